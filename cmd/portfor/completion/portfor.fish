# fish completion for portfor. Load it in ~/.config/fish/config.fish with
#   portfor completion fish | source
# or save it as ~/.config/fish/completions/portfor.fish.
# The candidates come from `portfor completion __complete -- WORDS...`, which
# knows the commands, their flags and the names in the registry.
function __portfor_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l out ($tokens[1] completion __complete -- $tokens[2..-1] $cur 2>/dev/null)
    if test "$out" = ":files"
        __fish_complete_path $cur
        return
    end
    printf '%s\n' $out
end
complete -c portfor -f -a '(__portfor_complete)'
