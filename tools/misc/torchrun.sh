# Sourced by tools/dist_train.sh and tools/dist_test.sh: run one of mmgate's
# tools under torchrun and, when a rank fails, say which.
#
#   torchrun_tool NAME TOOL [TOOL ARGS...]
#
# NNODES, NODE_RANK, MASTER_ADDR, PORT and PYTHON come from the environment
# (defaults: one node, rank 0, 127.0.0.1, 29500, python); NPROC is the number
# of processes on this node. torchrun's stderr is also copied to a file: when
# a rank fails, torchrun stops the others and exits non-zero; the last line
# then names the rank that failed first (torchrun's "Root Cause").
torchrun_tool() {
    local name=$1 tool=$2
    shift 2
    local tools_dir err_log status cause
    tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    err_log=$(mktemp "${TMPDIR:-/tmp}/${name}.XXXXXX")
    set +e
    { PYTHONPATH="$tools_dir/..":$PYTHONPATH \
    "${PYTHON:-python}" -m torch.distributed.run \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --nproc_per_node="$NPROC" \
        --master_port="${PORT:-29500}" \
        "$tools_dir/$tool" "$@" \
        2>&1 1>&3 3>&- | tee "$err_log" >&2; } 3>&1
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -ne 0 ]; then
        cause=$(awk '/Root Cause/ {found = 1}
            found && /^ *rank *:/ {sub(/^ *rank *: */, ""); rank = $0}
            found && /^ *exitcode *:/ {sub(/^ *exitcode *: */, "");
                gsub(/  +/, " ");
                print "rank " rank " failed first: exitcode " $0; exit}' \
            "$err_log")
        echo "$name: error: ${cause:-a process failed}; torchrun stopped" \
            "the other ranks and exited with $status" >&2
    fi
    rm -f "$err_log"
    return "$status"
}
