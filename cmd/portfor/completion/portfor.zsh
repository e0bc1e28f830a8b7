#compdef portfor
# zsh completion for portfor. Load it in ~/.zshrc, after compinit, with
#   source <(portfor completion zsh)
# or save it as _portfor in a directory of $fpath.
# The candidates come from `portfor completion __complete -- WORDS...`, which
# knows the commands, their flags and the names in the registry.
_portfor() {
    local out line
    local -a cands descs
    out=$("${words[1]}" completion __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null) || return 1
    if [[ $out == :files ]]; then
        _files
        return
    fi
    for line in "${(@f)out}"; do
        [[ -n $line ]] || continue
        cands+=("${line%%$'\t'*}")
        if [[ $line == *$'\t'* ]]; then
            descs+=("${line%%$'\t'*}  -- ${line#*$'\t'}")
        else
            descs+=("${line}")
        fi
    done
    (( ${#cands} )) || return 1
    compadd -l -d descs -a cands
}
if [[ ${funcstack[1]} == _portfor ]]; then
    _portfor "$@"
else
    compdef _portfor portfor
fi
