#!/bin/sh
# writ's thin hook client: `writ hook <kind>` against a running `writ serve`, without Node — the
# hook's JSON (stdin) goes to POST /hook/v1/<kind>/answer with curl, and the server's answer is
# printed as it comes, already in the agent's format. Agents run their hook around every tool call;
# this costs a shell and a curl instead of a Node start (docs/hooks.md).
#
#   sh writ-hook.sh <claude-code|gemini-cli|codex|cursor> [--server URL] [--agent ID] [--env ENV] [--allow-skips-prompt]
#
# Defaults: WRIT_SERVER, WRIT_AGENT, WRIT_ENV, WRIT_HOOK_ALLOW_SKIPS_PROMPT=1; WRIT_PDP_TOKEN, when
# set, is sent as a bearer token read by curl from a here-document, never on a command line. No
# server is no answer: the offline mode is `writ hook`'s.
#
# Fails closed: a bad argument, no curl, no answer within 10 s, anything but a 200 JSON answer —
# exit 2 with the reason on stderr, which both agents read as blocking the call.

fail() {
  printf 'writ hook: %s: %s\n' "$1" "$2" >&2
  exit 2
}

kind=""
server=${WRIT_SERVER-}
agent=${WRIT_AGENT-}
env=${WRIT_ENV-}
skips=""
[ "${WRIT_HOOK_ALLOW_SKIPS_PROMPT-}" = 1 ] && skips=1
while [ $# -gt 0 ]; do
  case $1 in
    --server | --agent | --env)
      [ $# -ge 2 ] || fail ERR_USAGE "option '$1 <value>' argument missing"
      case $1 in
        --server) server=$2 ;;
        --agent) agent=$2 ;;
        --env) env=$2 ;;
      esac
      shift 2
      ;;
    --server=*) server=${1#*=}; shift ;;
    --agent=*) agent=${1#*=}; shift ;;
    --env=*) env=${1#*=}; shift ;;
    --allow-skips-prompt) skips=1; shift ;;
    -*) fail ERR_USAGE "unknown option '$1'" ;;
    *)
      [ -z "$kind" ] || fail ERR_HOOK_AGENT_KIND "one agent kind is expected: claude-code, gemini-cli, codex or cursor"
      kind=$1
      shift
      ;;
  esac
done

case $kind in
  claude-code | gemini-cli | codex | cursor) ;;
  *) fail ERR_HOOK_AGENT_KIND "\"$kind\" is not an agent kind: expected claude-code, gemini-cli, codex, cursor" ;;
esac
[ -n "$agent" ] && [ -n "$env" ] ||
  fail ERR_HOOK_IDENTITY "the agent and its environment are not set: give --agent and --env, or WRIT_AGENT and WRIT_ENV in the hook's environment"
# identifiers go into the query as they are: only characters that need no encoding
for id in "$agent" "$env"; do
  case $id in
    *[!A-Za-z0-9._~-]*) fail ERR_HOOK_IDENTITY "\"$id\": this client takes identifiers of letters, digits, '.', '_', '~' and '-' (writ hook takes any)" ;;
  esac
  [ ${#id} -le 256 ] || fail ERR_HOOK_IDENTITY "an identifier is longer than 256 characters"
done
[ -n "$server" ] || fail ERR_HOOK_SERVER "no server: give --server or WRIT_SERVER (without one, use writ hook, which judges offline)"
case $server in
  http://?* | https://?*) ;;
  *) fail ERR_HOOK_SERVER "\"$server\" is not an http(s) URL" ;;
esac
# no user:password@, no query, no spaces: the URL is only a server's
case $server in
  *[!][A-Za-z0-9._~:/%+-]*) fail ERR_HOOK_SERVER "\"$server\" is not the http(s) URL of a server (no user, query or spaces)" ;;
esac
token=${WRIT_PDP_TOKEN-}
case $token in
  *[![:graph:]]*) fail ERR_HOOK_SERVER "WRIT_PDP_TOKEN holds a space or a control character" ;;
esac
nl='
'

# Under bash (4.4 or later) with a plain-http server on loopback, bash speaks HTTP itself
# (writ-hook-tcp.bash, beside this file): no curl process. Elsewhere, curl.
tcp_port=""
case ${BASH_VERSION-} in
  4.[4-9]* | [5-9].*)
    tcp_rest=${server#http://}
    tcp_hostport=${tcp_rest%%/*}
    tcp_path=${tcp_rest#"$tcp_hostport"}
    case $tcp_hostport in
      127.0.0.1 | localhost | "[::1]") tcp_host=$tcp_hostport tcp_port=80 ;;
      127.0.0.1:* | localhost:* | "[::1]:"*) tcp_host=${tcp_hostport%:*} tcp_port=${tcp_hostport##*:} ;;
    esac
    tcp_host=${tcp_host#\[}
    tcp_host=${tcp_host%\]}
    case $tcp_port in
      "" | *[!0-9]* | ??????*) tcp_port="" ;;
      *) [ "$tcp_port" -ge 1 ] && [ "$tcp_port" -le 65535 ] || tcp_port="" ;;
    esac
    case $0 in
      */*) tcp_file=${0%/*}/writ-hook-tcp.bash ;;
      *) tcp_file=./writ-hook-tcp.bash ;;
    esac
    [ -r "$tcp_file" ] || tcp_port=""
    ;;
esac

if [ -n "$tcp_port" ]; then
  # sets code, ctype and body, or fails
  . "$tcp_file"
else
  command -v curl >/dev/null 2>&1 || fail ERR_HOOK_SERVER "curl is not installed: use writ hook"
  url="${server%/}/hook/v1/$kind/answer?agent=$agent&env=$env${skips:+&allow_skips_prompt=1}"
  # -q: no ~/.curlrc; the body is stdin, verbatim; the status and media type follow the body
  set -- -q -sS --globoff --proto =http,https --max-time 10 --max-filesize 65536 \
    -H 'content-type: application/json' --data-binary @- \
    -w '\n%{http_code} %{content_type}' --url "$url"
  if [ -n "$token" ]; then
    out=$(curl "$@" -H @/dev/fd/3 2>&1 3<<EOF
Authorization: Bearer $token
EOF
    )
  else
    out=$(curl "$@" 2>&1)
  fi
  rc=$?
  status=${out##*"$nl"}
  body=${out%"$nl"*}
  body=${body%"$nl"}
  [ $rc -eq 0 ] || fail ERR_HOOK_SERVER "$server: ${body:-curl exited $rc}"
  code=${status%% *}
  ctype=${status#* }
fi

case $code in
  200)
    case $ctype in
      application/json | "application/json;"* | "application/json "*) ;;
      *) fail ERR_HOOK_SERVER "$server: the server's answer is not a hook answer" ;;
    esac
    ;;
  *)
    detail=${body#*\"detail\":\"}
    if [ "$detail" != "$body" ]; then
      detail=${detail%%\",\"*}
      detail=${detail%%\"\}*}
    fi
    fail ERR_HOOK_SERVER "$server: the server answered $code: $(printf '%.300s' "$detail")"
    ;;
esac
case $body in
  "{"*"}") printf '%s\n' "$body" ;;
  *) fail ERR_HOOK_SERVER "$server: the server's answer is not a hook answer" ;;
esac
