#!/usr/bin/env bash
# The local Apache Kafka broker (KRaft, single node) on 127.0.0.1.
#
#   kafka.sh fetch   fetch Apache's jars with Maven into lib/ (if missing)
#   kafka.sh up      fetch, format storage, start in the background, wait until it answers
#   kafka.sh down    stop it cleanly (SIGTERM, then wait; SIGKILL only after a timeout)
#   kafka.sh reset   stop it and wipe its data
#   kafka.sh status  say whether it runs
#   kafka.sh log     print the tail of the broker log
#
# Settings (environment): KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093),
# KAFKA_HEAP (512m), KAFKA_START_TIMEOUT seconds (120), KAFKA_VAR_DIR (var/:
# data, log, pid; another directory runs a second, independent broker).
# Jars live in lib/, data in var/data/, the log in var/broker.log: all git-ignored.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lib="$here/lib"
var=${KAFKA_VAR_DIR:-$here/var}
data="$var/data"
log="$var/broker.log"
pidfile="$var/broker.pid"
port=${KAFKA_PORT:-9092}
controller_port=${KAFKA_CONTROLLER_PORT:-9093}
heap=${KAFKA_HEAP:-512m}
start_timeout=${KAFKA_START_TIMEOUT:-120}

die() { echo "kafka.sh: $*" >&2; exit 1; }

kafka_version() {
  sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml"
}

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed: $2"
}

fetch() {
  local version
  version=$(kafka_version)
  if [ -f "$lib/org.apache.kafka.kafka_2.13-$version.jar" ]; then
    return 0
  fi
  need mvn "install Maven (Debian: apt-get install maven), or point HOTLEAD_KAFKA_BOOTSTRAP at an existing cluster"
  echo "kafka.sh: fetching Apache Kafka $version jars with Maven into $lib" >&2
  rm -rf "$lib"
  mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies \
    || die "Maven could not fetch the Kafka jars; check that Maven reaches its repository"
}

running_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 1
  # the pid must still be our broker, not a reused pid
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka.Kafka' || return 1
  echo "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

java_cmd() {
  need java "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)"
  java -Dlog4j2.configurationFile="$here/log4j2.properties" -cp "$lib/*" "$@"
}

render_config() {
  mkdir -p "$data"
  sed -e "s#@DATA_DIR@#$data#" -e "s#@PORT@#$port#" -e "s#@CONTROLLER_PORT@#$controller_port#" \
    "$here/server.properties.in" > "$var/server.properties"
}

format_storage() {
  if [ -f "$data/meta.properties" ]; then
    return 0
  fi
  local cluster_id
  # A Kafka cluster id: 16 random bytes, URL-safe base64 without padding.
  cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  case "$cluster_id" in -*) cluster_id="A${cluster_id:1}" ;; esac
  java_cmd -Xmx256m kafka.tools.StorageTool format -t "$cluster_id" \
    -c "$var/server.properties" --ignore-formatted >> "$log" 2>&1 \
    || { tail -n 30 "$log" >&2; die "formatting the storage in $data failed (see above); 'make kafka-reset' wipes it"; }
}

up() {
  if pid=$(running_pid); then
    echo "kafka.sh: broker already running (pid $pid) on 127.0.0.1:$port"
    return 0
  fi
  if port_open "$port"; then
    die "127.0.0.1:$port is taken by another process; stop it or set KAFKA_PORT"
  fi
  fetch
  mkdir -p "$var"
  render_config
  format_storage
  echo "=== broker start $(date -u +%FT%TZ) ===" >> "$log"
  # setsid: the broker must outlive the make/pytest process that started it.
  setsid java -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$here/log4j2.properties" \
    -cp "$lib/*" kafka.Kafka "$var/server.properties" >> "$log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  local waited=0
  until port_open "$port" && grep -q 'Kafka Server started' "$log"; do
    if ! running_pid > /dev/null; then
      tail -n 40 "$log" >&2
      die "the broker exited during start-up (log above, full log in $log)"
    fi
    if [ "$waited" -ge "$((start_timeout * 2))" ]; then
      tail -n 40 "$log" >&2
      die "the broker did not answer within ${start_timeout}s (log above, full log in $log)"
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
  echo "kafka.sh: Apache Kafka $(kafka_version) running (pid $(cat "$pidfile")) on 127.0.0.1:$port; log: $log"
}

down() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$pidfile"
    echo "kafka.sh: broker not running"
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 120); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "kafka.sh: broker did not stop within 60s, killing it" >&2
    kill -KILL "$pid"
  fi
  rm -f "$pidfile"
  echo "kafka.sh: broker stopped"
}

reset() {
  down
  rm -rf "$data" "$var/server.properties"
  echo "kafka.sh: broker data wiped"
}

status() {
  if pid=$(running_pid); then
    echo "running (pid $pid) on 127.0.0.1:$port"
  else
    echo "not running"
    return 3
  fi
}

case "${1:-}" in
  fetch) fetch ;;
  up) up ;;
  down) down ;;
  reset) reset ;;
  status) status ;;
  log) tail -n "${2:-50}" "$log" ;;
  *) die "usage: kafka.sh {fetch|up|down|reset|status|log [N]}" ;;
esac
