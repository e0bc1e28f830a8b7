package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/portfor/portfor/internal/activation"
	"github.com/portfor/portfor/internal/dotenv"
	"github.com/portfor/portfor/registry"
)

func runCmd() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "assign each NAME's port, then run CMD with them in its environment",
		ArgsUsage: "NAME[=PORT]... [--listen [--listen-address ADDR] [--udp]] -- CMD ARGS...",
		Description: `Assigns the ports as 'portfor forward NAME[=PORT]...' does, then runs CMD with
PORT set to the first NAME's port and <NAME>_PORT to each NAME's (upper-cased,
every character but A-Z and 0-9 made '_': my-web gives MY_WEB_PORT). In ARGS,
{port} becomes the first NAME's port and {port:NAME} that NAME's, for servers
that take their port as a flag.

CMD takes portfor's place (on Unix, portfor execs it: same pid, every signal
reaches CMD, nothing stays behind). The exit status is CMD's: 128+N when it
dies of signal N, 127 when it is not found, 126 when it cannot be run.

--listen: portfor binds each port itself (TCP, listening, on 127.0.0.1 unless
--listen-address says otherwise; UDP with --udp) and hands the sockets over as
systemd socket activation does: file descriptors 3, 4, ... in the order of the
names, LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES (the names). A port another
process holds is an error (exit 1) before CMD runs.

   portfor run web -- python3 -m http.server                # $PORT: reads nothing else
   portfor run web=5173 -- npx vite --port {port}           # the port as a flag
   portfor run web api -- sh -c 'echo $WEB_PORT $API_PORT'
   portfor run --listen web -- gunicorn app:app              # gunicorn reads LISTEN_FDS
   portfor run --listen --udp dns -- ./dns-server           # a UDP socket as fd 3`,
		// '--' must reach us: flags are parsed by parseRunArgs. They are
		// declared here for the help text only.
		SkipFlagParsing: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "listen", Usage: "bind the ports and pass them to CMD as sockets from fd 3 (systemd socket activation)"},
			&cli.StringFlag{Name: "listen-address", Value: "127.0.0.1", Usage: "with --listen: the `ADDR` to bind (0.0.0.0, ::1, ...)"},
			&cli.BoolFlag{Name: "udp", Usage: "with --listen: bind UDP sockets instead of listening TCP ones"},
		},
		Action: runRun,
	}
}

// runArgs is a parsed `portfor run` command line.
type runArgs struct {
	names   []string // NAME[=PORT] as given
	command []string // after "--"
	listen  bool
	address string // --listen-address, "" when not given
	udp     bool
	help    bool
}

// parseRunArgs reads NAME[=PORT]... with --listen, --listen-address ADDR
// (also --listen-address=ADDR) and --udp anywhere before "--", and CMD
// ARGS... after it.
func parseRunArgs(args []string) (runArgs, error) {
	var r runArgs
	addressSet := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, inline := strings.Cut(a, "=")
		switch {
		case a == "--":
			r.command = args[i+1:]
			if len(r.command) == 0 {
				return r, errors.New("missing CMD after '--'")
			}
			i = len(args)
		case a == "-h" || a == "--help" || a == "-help":
			r.help = true
			return r, nil
		case a == "--listen" || a == "-listen":
			r.listen = true
		case a == "--udp" || a == "-udp":
			r.udp = true
		case name == "--listen-address" || name == "-listen-address":
			if !inline {
				if i+1 == len(args) {
					return r, fmt.Errorf("%s needs a value", a)
				}
				i++
				value = args[i]
			}
			r.address, addressSet = value, true
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return r, fmt.Errorf("flag provided but not defined: %s", a)
		default:
			r.names = append(r.names, a)
		}
	}
	switch {
	case len(r.names) == 0:
		return r, errors.New("missing NAME")
	case r.command == nil:
		return r, errors.New("missing '-- CMD': portfor run NAME... -- CMD ARGS...")
	case !r.listen && (addressSet || r.udp):
		return r, errors.New("--listen-address and --udp go with --listen")
	}
	return r, nil
}

// EnvName is the environment variable that carries name's port in
// `portfor run`, the one `portfor env` prints: name upper-cased, every
// character other than A-Z and 0-9 replaced by '_', a '_' before a leading
// digit, then "_PORT" (my-web: MY_WEB_PORT, 3d: _3D_PORT).
func EnvName(name string) string { return dotenv.Identifier(name) + "_PORT" }

// expandPorts returns words with {port} replaced by first and {port:NAME}
// by port(NAME); an unknown NAME, or a {port: without its '}', is an
// error.
func expandPorts(words []string, first int, port func(string) (int, bool)) ([]string, error) {
	out := make([]string, len(words))
	for i, w := range words {
		if !strings.Contains(w, "{port") {
			out[i] = w
			continue
		}
		var b strings.Builder
		for {
			j := strings.Index(w, "{port")
			if j < 0 {
				break
			}
			b.WriteString(w[:j])
			rest := w[j+len("{port"):]
			switch {
			case strings.HasPrefix(rest, "}"):
				b.WriteString(strconv.Itoa(first))
				w = rest[1:]
			case strings.HasPrefix(rest, ":"):
				k := strings.IndexByte(rest, '}')
				if k < 0 {
					return nil, fmt.Errorf("%q: {port:NAME} without its '}'", clip(words[i]))
				}
				name := rest[1:k]
				p, ok := port(name)
				if !ok {
					return nil, fmt.Errorf("{port:%s} in %q: %s is not among the names given", clip(name), clip(words[i]), clip(name))
				}
				b.WriteString(strconv.Itoa(p))
				w = rest[k+1:]
			default:
				b.WriteString("{port") // {ports}, {portal}: not ours
				w = rest
			}
		}
		b.WriteString(w)
		out[i] = b.String()
	}
	return out, nil
}

// listenSpec is where `portfor run --listen` binds.
type listenSpec struct {
	addr netip.Addr
	udp  bool
}

// parseListenAddress reads --listen-address: an IP address, or localhost
// (127.0.0.1, the default).
func parseListenAddress(s string) (netip.Addr, error) {
	if s == "" || s == "localhost" {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("--listen-address %q: want an IP address without a zone (127.0.0.1, ::1, 0.0.0.0, ::)", clip(s))
	}
	return a.Unmap(), nil
}

// runRun is `portfor run`.
func runRun(c *cli.Context) error {
	const hint = "portfor run"
	r, err := parseRunArgs(c.Args().Slice())
	if err != nil {
		return usagef(hint, "%v", err)
	}
	if r.help {
		return showHelp(c)
	}
	reqs, err := forwardArgs(hint, r.names)
	if err != nil {
		return err
	}
	// Everything that can be refused is refused before the registry is
	// touched: the variables, the {port:NAME}s, the address, CMD itself.
	index := map[string]int{} // name → its first request
	vars := map[string]string{}
	for i, q := range reqs {
		if _, seen := index[q.ID]; seen {
			continue
		}
		index[q.ID] = i
		v := EnvName(q.ID)
		if other, taken := vars[v]; taken {
			return usagef(hint, "%s and %s would both set %s", clip(other), clip(q.ID), v)
		}
		vars[v] = q.ID
		if r.listen && !validFDName(q.ID) {
			return usagef(hint, "--listen: %s cannot name a socket in %s (printable ASCII only)", clip(q.ID), activation.EnvListenFDNames)
		}
	}
	known := func(name string) (int, bool) { _, ok := index[name]; return 0, ok }
	if _, err := expandPorts(r.command[1:], 0, known); err != nil {
		return usagef(hint, "%v", err)
	}
	var spec *listenSpec
	if r.listen {
		a, err := parseListenAddress(r.address)
		if err != nil {
			return usagef(hint, "%v", err)
		}
		spec = &listenSpec{addr: a, udp: r.udp}
		reserveFDs(len(index)) // before the registry opens a file
	}
	path, err := exec.LookPath(r.command[0])
	if err != nil {
		code, why := startFailure(err)
		fmt.Fprintf(c.App.ErrWriter, "portfor: %s: %s\n", printable(r.command[0]), why)
		return &exitError{code: code}
	}

	reg, err := openRegistry(c)
	if err != nil {
		return err
	}
	res, err := forwardEach(c, reg, reqs)
	if err != nil {
		return err
	}

	ports := make([]int, len(reqs))
	for i, x := range res {
		ports[i] = x.Port
	}
	byName := func(name string) (int, bool) {
		i, ok := index[name]
		return ports[i], ok
	}
	args, err := expandPorts(r.command[1:], ports[0], byName)
	if err != nil {
		return usagef(hint, "%v", err) // checked above
	}
	argv := append([]string{r.command[0]}, args...)

	env := map[string]string{"PORT": strconv.Itoa(ports[0])}
	for v, name := range vars {
		p, _ := byName(name)
		env[v] = strconv.Itoa(p)
	}
	var names []string
	var fds []int
	if spec != nil {
		seen := map[string]bool{}
		for i, q := range reqs {
			if seen[q.ID] {
				continue
			}
			seen[q.ID] = true
			fd, err := bindSocket(spec, ports[i])
			if err != nil {
				closeAll(fds)
				return fmt.Errorf("run: port %d of %s: %s: %w", ports[i], q.ID, socketAddr(spec, ports[i]), err)
			}
			fds = append(fds, fd)
			names = append(names, q.ID)
		}
		env[activation.EnvListenFDs] = strconv.Itoa(len(fds))
		env[activation.EnvListenFDNames] = strings.Join(names, ":")
		// LISTEN_PID is set by execCommand: the pid CMD will have.
	}
	return execCommand(c, path, argv, env, fds)
}

// socketAddr says where spec binds port, as a user would write it.
func socketAddr(spec *listenSpec, port int) string {
	proto := "tcp"
	if spec.udp {
		proto = "udp"
	}
	return proto + " " + netip.AddrPortFrom(spec.addr, uint16(port)).String()
}

// validFDName is systemd's rule for LISTEN_FDNAMES entries: 1 to 255
// printable ASCII characters, no ':'.
func validFDName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || s[i] == ':' {
			return false
		}
	}
	return true
}

// mergeEnv returns base with the variables of set replacing any of the
// same name, which come after the others.
func mergeEnv(base []string, set map[string]string) []string {
	out := make([]string, 0, len(base)+len(set))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ours := set[k]; !ours {
			out = append(out, kv)
		}
	}
	for k, v := range set {
		out = append(out, k+"="+v)
	}
	return out
}

// forwardNotes says on stderr what `forward` says about the ports it
// gave: a known name that keeps another port than the one asked, a new
// name that did not get the port asked because something holds it (and
// what), a new port in the ephemeral range.
func forwardNotes(c *cli.Context, reg *registry.Registry, reqs []registry.ForwardRequest, res []registry.ForwardResult) {
	for i, q := range reqs {
		r := res[i]
		switch {
		case q.Suggested == 0:
		case r.Known && r.Port != q.Suggested:
			fmt.Fprintf(c.App.ErrWriter, "portfor: %s keeps %d (asked %d); 'portfor move %s %d' changes it\n", q.ID, r.Port, q.Suggested, q.ID, q.Suggested)
		case !r.Known && r.Port != q.Suggested:
			// The port asked for was not free: say what holds it, where
			// the system tells (another name's port says nothing here).
			if who := heldBy(c.Context, reg, "tcp", q.Suggested); who != "" {
				fmt.Fprintf(c.App.ErrWriter, "portfor: %s got %d: %d is occupied by %s\n", q.ID, r.Port, q.Suggested, who)
			}
		case !r.Known && r.Port == q.Suggested && reg.IsEphemeral(r.Port):
			// Only a port asked for by number can lie in the ephemeral range.
			warnEphemeral(c, r.Port, q.ID)
		}
	}
}

// runChild runs path as argv with env and the given standard streams, as a
// child process, passing on SIGINT, SIGTERM and SIGHUP, and returns its
// status as runCommand does. It is `portfor run` where portfor cannot
// take CMD's place (no exec on Windows; tests that run the app in-process).
func runChild(path string, argv, env []string, stdout, stderr io.Writer) error {
	cmd := &exec.Cmd{Path: path, Args: argv, Env: env, Stdin: os.Stdin, Stdout: stdout, Stderr: stderr}
	return superviseChild(cmd, stderr, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
}
