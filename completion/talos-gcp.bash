# bash completion for talos-gcp                              -*- shell-script -*-
#
# The candidates come from the program itself, `talos-gcp __complete WORD...` (src/cli/
# complete.c): its subcommands, their flags, -o formats, doctor's rule ids, render's
# components are always those of the installed version. It prints one candidate a line
# ("VALUE<TAB>DESCRIPTION"), then ":files", ":dirs" or ":" for what the shell adds itself.
# Installed as bash-completion/completions/talos-gcp (loaded on first use).

_talos_gcp()
{
    local cur=${COMP_WORDS[COMP_CWORD]} i w directive
    local -a words=() lines=()

    # bash splits "--flag=value" at '=' (COMP_WORDBREAKS): join "--flag" "=" "value" again.
    for ((i = 1; i <= COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ $w == "=" && ${#words[@]} -gt 0 && ${words[-1]} == --* && ${words[-1]} != *=* ]]; then
            words[-1]+="="
        elif [[ ${#words[@]} -gt 0 && ${words[-1]} == --*= && ${COMP_WORDS[i-1]} == "=" ]]; then
            words[-1]+=$w
        else
            words+=("$w")
        fi
    done
    # What readline replaces is the text after the last '=': an empty one right after it.
    [[ $cur == "=" ]] && cur=""

    mapfile -t lines < <("${COMP_WORDS[0]}" __complete "${words[@]}" 2>/dev/null)
    ((${#lines[@]})) || return 0
    directive=${lines[-1]}
    unset 'lines[-1]'

    case $directive in
    :files)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        ;;
    :dirs)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        ;;
    *)
        COMPREPLY=()
        for w in "${lines[@]}"; do
            COMPREPLY+=("${w%%$'\t'*}")
        done
        ;;
    esac
    return 0
}

complete -F _talos_gcp talos-gcp
