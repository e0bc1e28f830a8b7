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
    # bash splits the word being completed at '=' (COMP_WORDBREAKS) and
    # replaces only the text after the last one. The word as typed is the
    # end of the line up to the cursor (names hold no white space).
    local typed=${COMP_LINE:0:COMP_POINT}
    typed=${typed##*[[:space:]]}
    local before=
    if [[ $typed == *=* ]]; then
        before=${typed%=*}=
        # Without bash-completion, COMP_WORDS has it in pieces (a = b):
        # join them back.
        local i=$cword joined=
        while ((i > 0)); do
            joined=${words[i]}$joined
            [[ $joined == "$typed" ]] && break
            ((i--))
        done
        if [[ $joined == "$typed" ]]; then
            words=("${words[@]:0:i}" "$typed")
            cword=$i
        fi
    fi
    local out
    out=$("${words[0]}" completion __complete -- "${words[@]:1:cword}" 2>/dev/null) || return 0
    COMPREPLY=()
    # Read line by line, never as an unquoted expansion: a candidate is no
    # glob pattern, whatever nullglob or failglob say.
    local line word
    if [[ $out == :files ]]; then
        cur=${typed#*=}
        compopt -o filenames 2>/dev/null
        while IFS= read -r line; do
            COMPREPLY+=("$line")
        done < <(compgen -f -- "$cur")
        return 0
    fi
    while IFS= read -r line; do
        line=${line%%$'\t'*}
        [[ -n $before && $line == "$before"* ]] && line=${line#"$before"}
        # Quoted for the command line: a name in a shared registry is
        # another user's text, and bash inserts a candidate as it is.
        printf -v word '%q' "$line"
        COMPREPLY+=("$word")
    done <<<"$out"
}
complete -F _portfor portfor
