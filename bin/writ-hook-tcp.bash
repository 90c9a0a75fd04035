# writ's thin hook client, its transport without curl: sourced by writ-hook.sh when bash (4.4 or
# later) runs it and the server is plain http on loopback (127.0.0.1, [::1], localhost). bash
# speaks HTTP/1.0 itself on /dev/tcp — no curl process, the call costs one bash and one fork.
#
# In: server, kind, agent, env, skips, token, tcp_host, tcp_port, tcp_path, tcp_hostport (set and
# checked by writ-hook.sh: no byte of them needs quoting in a request line or a header).
# Out: code (the HTTP status), ctype (the answer's media type, lower case) and body; or fail.
#
# The exchange — reading the hook's JSON, connecting, sending, reading the answer — runs in a
# subshell whose output this shell waits for at most 10 s (`read -t`): a server that never accepts
# (a full listen queue), never reads, or never answers costs 10 s and fails closed, and the
# subshell is ended. HTTP/1.0: the server answers with a Content-Length, never chunks; the answer
# is read to its length (to the connection's end only when it has none).

LC_ALL=C # lengths in bytes, patterns on bytes
tcp_in_max=1052672   # the server's limit on a hook body (1 MiB + 4 KiB: src/hook/routes.ts)
tcp_out_max=73728    # an answer: 64 KiB of body and its status line and headers
tcp_cr=$'\r'
tcp_eol=$'\r\n'

# Its output: \001 and the server's whole answer as it came; \002 and why not; or bash's error.
exec 4< <(
  # the hook's JSON to its end: bytes as they are, but for NUL, which read drops (no JSON holds one)
  IFS= read -r -N $((tcp_in_max + 1)) input
  [ ${#input} -le $tcp_in_max ] || { printf '\002the hook input is larger than the server takes (1 MiB)'; exit; }
  # bash's own words when it cannot connect (`…: Connection refused`) go to this shell, and it ends
  { exec 3<>"/dev/tcp/$tcp_host/$tcp_port"; } 2>&1 || exit
  printf 'POST %s/hook/v1/%s/answer?agent=%s&env=%s%s HTTP/1.0\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\n%s\r\n%s' \
    "${tcp_path%/}" "$kind" "$agent" "$env" "${skips:+&allow_skips_prompt=1}" "$tcp_hostport" \
    "${#input}" "${token:+Authorization: Bearer $token$tcp_eol}" "$input" >&3 2>/dev/null
  # the answer's head line by line, then its body by its Content-Length: the answer is whole
  # when its last byte comes, not when the server gets round to closing the connection
  out=""
  while :; do
    IFS= read -r -t 11 -u 3 line 2>/dev/null || { out+=$line; break; }
    out+=$line$'\n'
    [ "$line" = "$tcp_cr" ] && break
    [ ${#out} -le $tcp_out_max ] || break
  done
  size=${out,,}
  case $size in
    *$'\n'content-length:*$'\r\n\r\n')
      size=${size#*$'\n'content-length:}
      size=${size%%"$tcp_cr"*}
      size=${size//[ 	]/}
      ;;
    *) size="" ;;
  esac
  left=$((tcp_out_max + 1 - ${#out}))
  case $size in
    "" | *[!0-9]* | ???????*) size=$left ;; # none or unusable: to the end
    *) [ "$size" -le $left ] || size=$left ;;
  esac
  if [ "$size" -gt 0 ] && [ ${#out} -le $tcp_out_max ]; then
    IFS= read -r -N "$size" -t 11 -u 3 rest 2>/dev/null
    out+=$rest
  fi
  printf '\001%s' "$out"
)
tcp_sub=$!
IFS= read -r -N $((tcp_out_max + 2)) -t 10 -u 4 resp
if [ $? -gt 128 ]; then
  kill "$tcp_sub" 2>/dev/null
  fail ERR_HOOK_SERVER "$server: no answer within 10 s"
fi
exec 4<&-
case $resp in
  $'\001'*) resp=${resp#?} ;;
  $'\002'*) fail ERR_HOOK_SERVER "$server: ${resp#?}" ;;
  "") fail ERR_HOOK_SERVER "$server: the connection ended without an answer" ;;
  *)
    resp=${resp%$'\n'}
    fail ERR_HOOK_SERVER "$server: cannot connect: ${resp##*: }"
    ;;
esac
[ -n "$resp" ] || fail ERR_HOOK_SERVER "$server: the server closed the connection without an answer"
[ ${#resp} -le $tcp_out_max ] || fail ERR_HOOK_SERVER "$server: the server's answer is over 64 KiB"
case $resp in
  *"$tcp_eol$tcp_eol"*) ;;
  *) fail ERR_HOOK_SERVER "$server: the server's answer is incomplete" ;;
esac
tcp_head=${resp%%"$tcp_eol$tcp_eol"*}
body=${resp#*"$tcp_eol$tcp_eol"}
tcp_line=${tcp_head%%"$tcp_eol"*}
case $tcp_line in
  "HTTP/1."[01]" "[1-5][0-9][0-9] | "HTTP/1."[01]" "[1-5][0-9][0-9]" "*) code=${tcp_line:9:3} ;;
  *) fail ERR_HOOK_SERVER "$server: the server's answer is not HTTP" ;;
esac
tcp_head=${tcp_head,,}$tcp_eol
# a header's value (the first of that name), without the spaces around it
tcp_header() {
  tcp_v=""
  case $tcp_head in
    *"$tcp_eol$1:"*) ;;
    *) return 1 ;;
  esac
  tcp_v=${tcp_head#*"$tcp_eol$1:"}
  tcp_v=${tcp_v%%"$tcp_eol"*}
  tcp_v=${tcp_v#"${tcp_v%%[! 	]*}"}
  tcp_v=${tcp_v%"${tcp_v##*[! 	]}"}
}
ctype=""
tcp_header content-type && ctype=$tcp_v
# the whole body, or nothing: an answer cut short is not an answer
if tcp_header content-length; then
  case $tcp_v in
    "" | *[!0-9]*) fail ERR_HOOK_SERVER "$server: the server's answer is not HTTP" ;;
  esac
  [ "${#tcp_v}" -le 6 ] && [ "$tcp_v" -eq ${#body} ] ||
    fail ERR_HOOK_SERVER "$server: the server's answer is incomplete"
elif [ "$code" = 200 ]; then
  fail ERR_HOOK_SERVER "$server: the server's answer is not a hook answer"
fi
[ ${#body} -le 65536 ] || fail ERR_HOOK_SERVER "$server: the server's answer is over 64 KiB"
body=${body%$'\n'}
