package dorissim

import "strings"

// The scripts keep the real ones' options, environment, files and messages;
// where the real ones start the JVM or doris_be they start the simulator.
// @NAME@ placeholders are filled per package.

// confEnvFn exports the upper-case keys of a conf file, evaluating their
// values with the shell as the real scripts do (so ${DORIS_HOME} and
// $(date ...) work in them).
const confEnvFn = `
export_conf_env() {
    local line
    while IFS= read -r line || [[ -n "${line}" ]]; do
        line="${line#"${line%%[![:space:]]*}"}"
        if [[ "${line}" =~ ^([A-Z][A-Z0-9_]*)[[:blank:]]*=[[:blank:]]*(.*)$ ]]; then
            local key="${BASH_REMATCH[1]}"
            local value
            value="$(eval "echo ${BASH_REMATCH[2]}")"
            export "${key}=${value}"
        fi
    done <"$1"
}
`

// processAlive treats a zombie as gone: a killed daemon may wait a while for
// its reaper.
const processAliveFn = `
process_alive() {
    local state
    [[ -r "/proc/$1/stat" ]] || return 1
    state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)"
    [[ -n "${state}" && "${state}" != "Z" && "${state}" != "X" ]]
}
`

// simEnvFn loads lib/dorissim.env: test knobs baked into the package, used
// unless the environment already sets them.
const simEnvFn = `
if [[ -f "${curdir}/../lib/dorissim.env" ]]; then
    while IFS='=' read -r key value || [[ -n "${key}" ]]; do
        if [[ "${key}" =~ ^[A-Z_][A-Z0-9_]*$ && -z "${!key+x}" ]]; then
            export "${key}=${value}"
        fi
    done <"${curdir}/../lib/dorissim.env"
fi
`

const javaCheck = `
if [[ -z "${JAVA_HOME}" ]]; then
    JAVA="$(command -v java || true)"
else
    JAVA="${JAVA_HOME}/bin/java"
fi

if [[ ! -x "${JAVA}" ]]; then
    echo "The JAVA_HOME environment variable is not set correctly"
    echo "This environment variable is required to run this program"
    echo "Note: JAVA_HOME should point to a JDK and not a JRE"
    echo "You can set JAVA_HOME in the @CONF@ configuration file"
    exit 1
fi

java_version="$("${JAVA}" -version 2>&1 | tr '\r' '\n' | grep version | awk '{print $3}' | tr -d '"' || true)"
if [[ -z "${java_version}" ]]; then
    echo "ERROR: can not get the version of ${JAVA}"
    exit 1
fi
`

const proxyCheck = `
for var in http_proxy HTTP_PROXY https_proxy HTTPS_PROXY; do
    if [[ -n ${!var} ]]; then
        echo "env '${var}' = '${!var}', need unset it using 'unset ${var}'"
        exit 1
    fi
done
`

const startFE = `#!/usr/bin/env bash
# Doris @VERSION@ frontend start script (simulated).
set -eo pipefail

curdir="$(cd "$(dirname "${BASH_SOURCE[0]}")" &>/dev/null && pwd)"

OPTS="$(getopt -n "$0" -o '' -l 'daemon' -l 'console' -l 'helper:' -l 'image:' -l 'version' -l 'metadata_failure_recovery' -- "$@")"
eval set -- "${OPTS}"

RUN_DAEMON=0
RUN_CONSOLE=0
HELPER=''
OPT_VERSION=''
while true; do
    case "$1" in
    --daemon) RUN_DAEMON=1; shift ;;
    --console) RUN_CONSOLE=1; shift ;;
    --version) OPT_VERSION="--version"; shift ;;
    --metadata_failure_recovery) shift ;;
    --helper) HELPER="$2"; shift 2 ;;
    --image) shift 2 ;;
    --) shift; break ;;
    *) echo "Internal error"; exit 1 ;;
    esac
done

DORIS_HOME="$(cd "${curdir}/.." && pwd)"
export DORIS_HOME
export PALO_HOME="${DORIS_HOME}"
` + simEnvFn + `
export JAVA_OPTS="-Xmx1024m"
export LOG_DIR="${DORIS_HOME}/log"
PID_DIR="$(cd "${curdir}" && pwd)"
export PID_DIR
` + confEnvFn + `
export_conf_env "${DORIS_HOME}/conf/fe.conf"
` + javaCheck + proxyCheck + `
if [[ ! -d "${LOG_DIR}" ]]; then
    mkdir -p "${LOG_DIR}"
fi

STDOUT_LOGGER="${LOG_DIR}/fe.out"
log() {
    local cur_date
    cur_date="$(date +"%Y-%m-%d %H:%M:%S,$(date +%3N)")"
    if [[ "${RUN_CONSOLE}" -eq 1 ]]; then
        echo "StdoutLogger ${cur_date} $1"
    else
        echo "StdoutLogger ${cur_date} $1" >>"${STDOUT_LOGGER}"
    fi
}

if [[ -n "${OPT_VERSION}" ]]; then
    echo "Build version: doris-@VERSION@"
    exit 0
fi

pidfile="${PID_DIR}/fe.pid"
if [[ -f "${pidfile}" ]]; then
    if kill -0 "$(cat "${pidfile}")" >/dev/null 2>&1; then
        echo "Frontend running as process $(cat "${pidfile}"). Stop it first."
        exit 1
    fi
fi

log "Using Java version ${java_version}"
log "start time: $(date)"

SIM="${DORIS_HOME}/lib/dorissim"
SIM_ARGS=(fe)
if [[ -n "${HELPER}" ]]; then
    SIM_ARGS+=(--helper "${HELPER}")
fi

if [[ "${RUN_DAEMON}" -eq 1 ]]; then
    nohup "${SIM}" "${SIM_ARGS[@]}" "$@" >>"${STDOUT_LOGGER}" 2>&1 </dev/null &
    echo $! >"${pidfile}"
elif [[ "${RUN_CONSOLE}" -eq 1 ]]; then
    export DORIS_LOG_TO_STDERR=1
    "${SIM}" "${SIM_ARGS[@]}" "$@" </dev/null
else
    "${SIM}" "${SIM_ARGS[@]}" "$@" >>"${STDOUT_LOGGER}" 2>&1 </dev/null
fi
`

const startBE = `#!/usr/bin/env bash
# Doris @VERSION@ backend start script (simulated).
#
# Test knobs (not in real Doris): DORIS_SIM_MIN_NOFILE (default 60000),
# DORIS_SIM_MIN_MAP_COUNT (default 2000000), DORIS_SIM_PROC_SWAPS (default
# /proc/swaps), DORIS_SIM_PROC_MAX_MAP_COUNT (default /proc/sys/vm/max_map_count).
set -eo pipefail

curdir="$(cd "$(dirname "${BASH_SOURCE[0]}")" &>/dev/null && pwd)"

OPTS="$(getopt -n "$0" -o '' -l 'daemon' -l 'console' -- "$@")"
eval set -- "${OPTS}"

RUN_DAEMON=0
RUN_CONSOLE=0
while true; do
    case "$1" in
    --daemon) RUN_DAEMON=1; shift ;;
    --console) RUN_CONSOLE=1; shift ;;
    --) shift; break ;;
    *) echo "Internal error"; exit 1 ;;
    esac
done

DORIS_HOME="$(cd "${curdir}/.." && pwd)"
export DORIS_HOME
export PALO_HOME="${DORIS_HOME}"
` + simEnvFn + `
if [[ "${SKIP_CHECK_ULIMIT:-false}" != "true" ]]; then
    MAX_MAP_COUNT="$(cat "${DORIS_SIM_PROC_MAX_MAP_COUNT:-/proc/sys/vm/max_map_count}")"
    if [[ "${MAX_MAP_COUNT}" -lt "${DORIS_SIM_MIN_MAP_COUNT:-2000000}" ]]; then
        echo "Please set vm.max_map_count to be 2000000 under root using 'sysctl -w vm.max_map_count=2000000'."
        exit 1
    fi

    if [[ "$(wc -l <"${DORIS_SIM_PROC_SWAPS:-/proc/swaps}")" -gt 1 ]]; then
        echo "Please disable swap memory before installation."
        exit 1
    fi

    MAX_FILE_COUNT="$(ulimit -n)"
    if [[ "${MAX_FILE_COUNT}" != "unlimited" && "${MAX_FILE_COUNT}" -lt "${DORIS_SIM_MIN_NOFILE:-60000}" ]]; then
        echo "Set max number of open file descriptors to a value greater than 60000."
        echo "Ask your system manager to modify /etc/security/limits.conf and append content like"
        echo "  * soft nofile 655350"
        echo "  * hard nofile 655350"
        echo "and then run 'ulimit -n 655350' to take effect on current session."
        exit 1
    fi
fi

export LOG_DIR="${DORIS_HOME}/log"
PID_DIR="$(cd "${curdir}" && pwd)"
export PID_DIR
` + confEnvFn + `
export_conf_env "${DORIS_HOME}/conf/be.conf"

if [[ "@BE_NEEDS_JAVA@" == "1" && -z "${JAVA_HOME}" ]]; then
    echo "The JAVA_HOME environment variable is not defined correctly"
    echo "This environment variable is needed to run this program"
    echo "NB: JAVA_HOME should point to a JDK not a JRE"
    echo "You can set it in be.conf"
    exit 1
fi
` + proxyCheck + `
if [[ ! -d "${LOG_DIR}" ]]; then
    mkdir -p "${LOG_DIR}"
fi

pidfile="${PID_DIR}/be.pid"
if [[ -f "${pidfile}" ]]; then
    if kill -0 "$(cat "${pidfile}")" >/dev/null 2>&1; then
        echo "Backend running as process $(cat "${pidfile}"). Stop it first."
        exit 1
    else
        rm "${pidfile}"
    fi
fi

chmod 550 "${DORIS_HOME}/lib/doris_be"
echo "start time: $(date)" >>"${LOG_DIR}/be.out"

if [[ "${RUN_DAEMON}" -eq 1 ]]; then
    nohup "${DORIS_HOME}/lib/doris_be" "$@" >>"${LOG_DIR}/be.out" 2>&1 </dev/null &
elif [[ "${RUN_CONSOLE}" -eq 1 ]]; then
    export DORIS_LOG_TO_STDERR=1
    "${DORIS_HOME}/lib/doris_be" "$@" 2>&1 </dev/null
else
    "${DORIS_HOME}/lib/doris_be" "$@" >>"${LOG_DIR}/be.out" 2>&1 </dev/null
fi
`

const startBroker = `#!/usr/bin/env bash
# Doris @VERSION@ apache_hdfs_broker start script (simulated).
set -eo pipefail

curdir="$(cd "$(dirname "${BASH_SOURCE[0]}")" &>/dev/null && pwd)"

OPTS="$(getopt -n "$0" -o '' -l 'daemon' -- "$@")"
eval set -- "${OPTS}"

RUN_DAEMON=0
while true; do
    case "$1" in
    --daemon) RUN_DAEMON=1; shift ;;
    --) shift; break ;;
    *) echo "Internal error"; exit 1 ;;
    esac
done

BROKER_HOME="$(cd "${curdir}/.." && pwd)"
export BROKER_HOME
` + simEnvFn + `
PID_DIR="$(cd "${curdir}" && pwd)"
export PID_DIR
export JAVA_OPTS="-Xmx1024m -Dfile.encoding=UTF-8"
export BROKER_LOG_DIR="${BROKER_HOME}/log"
` + javaCheck + confEnvFn + `
export_conf_env "${BROKER_HOME}/conf/apache_hdfs_broker.conf"

pidfile="${PID_DIR}/apache_hdfs_broker.pid"
if [[ -f "${pidfile}" ]]; then
    if kill -0 "$(cat "${pidfile}")" >/dev/null 2>&1; then
        echo "Broker running as process $(cat "${pidfile}").  Stop it first."
        exit 1
    fi
fi

if [[ ! -d "${BROKER_LOG_DIR}" ]]; then
    mkdir -p "${BROKER_LOG_DIR}"
fi

date >>"${BROKER_LOG_DIR}/apache_hdfs_broker.out"

if [[ ${RUN_DAEMON} -eq 1 ]]; then
    nohup "${BROKER_HOME}/lib/dorissim" broker "$@" >>"${BROKER_LOG_DIR}/apache_hdfs_broker.out" 2>&1 </dev/null &
    echo $! >"${pidfile}"
else
    "${BROKER_HOME}/lib/dorissim" broker "$@" 2>&1 </dev/null
fi
`

// stopScript kills the process in the pid file (SIGKILL, or SIGTERM with
// --grace), waits until it is gone and removes the pid file.
const stopScript = `#!/usr/bin/env bash
# Doris @VERSION@ @WHAT@ stop script (simulated).
curdir="$(cd "$(dirname "${BASH_SOURCE[0]}")" &>/dev/null && pwd)"
@HOMEVAR@="$(cd "${curdir}/.." && pwd)"
export @HOMEVAR@
export PID_DIR="${curdir}"

signum=9
if [[ "$1" == "--grace" ]]; then
    signum=15
fi
` + confEnvFn + processAliveFn + `
export_conf_env "${@HOMEVAR@}/conf/@CONF@"

pidfile="${PID_DIR}/@PIDFILE@"
if [[ ! -f "${pidfile}" ]]; then
    echo "${pidfile} does not exist"
    exit 1
fi

pid="$(cat "${pidfile}")"
if [[ -z "${pid}" ]]; then
    echo "ERROR: invalid pid."
    exit 1
fi

if ! process_alive "${pid}"; then
    echo "@WHAT@ process ${pid} does not exist, remove pid file. "
    rm -f "${pidfile}"
    exit 0
fi

pidcomm="$(basename "$(ps -p "${pid}" -o comm= 2>/dev/null || true)")"
if [[ "@COMM@" != "${pidcomm}" ]]; then
    echo "ERROR: pid process may not be @SHORT@. "
    exit 1
fi

if kill "-${signum}" "${pid}" >/dev/null 2>&1; then
    while process_alive "${pid}"; do
        echo "Waiting for @SHORT@ process with pid ${pid} to exit"
        sleep 0.2
    done
    echo "stop ${pidcomm} and remove pid file. "
    rm -f "${pidfile}"
    exit 0
fi
exit 1
`

func fill(tmpl string, kv ...string) string {
	return strings.NewReplacer(kv...).Replace(tmpl)
}
