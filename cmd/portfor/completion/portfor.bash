# bash completion for portfor. Load it in ~/.bashrc with
#   source <(portfor completion bash)
# or save it as ~/.local/share/bash-completion/completions/portfor.
# The candidates come from `portfor completion __complete -- WORDS...`, which
# knows the commands, their flags and the names in the registry.
_portfor() {
    local cur words cword
    if declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
        # bash-completion keeps --db=PATH in one word.
        _get_comp_words_by_ref -n =: cur words cword
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi
    local IFS=$'\n' out
    out=$("${words[0]}" completion __complete -- "${words[@]:1:cword}" 2>/dev/null) || return 0
    COMPREPLY=()
    if [[ $out == :files ]]; then
        cur=${cur#*=}
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
        return 0
    fi
    # Quoted for the command line: a name in a shared registry is another
    # user's text, and bash inserts a candidate as it is.
    local line word
    for line in $out; do
        printf -v word '%q' "${line%%$'\t'*}"
        COMPREPLY+=("$word")
    done
}
complete -F _portfor portfor
