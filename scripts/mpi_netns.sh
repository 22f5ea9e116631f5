#!/usr/bin/env bash
# The 2-rank MPI tests across a network: two network namespaces joined by a veth pair, one rank in
# each, talking over Open MPI's TCP transport (btl tcp,self on the veth subnet; no shared memory,
# no loopback between the ranks). mpirun starts in the first namespace and launches the second
# rank's daemon with `ip netns exec` instead of ssh (plm_rsh_agent). Needs root, iproute2 and
# Open MPI; removes the namespaces on exit.
#
#   scripts/mpi_netns.sh                 # the MPIJobTests suite across the namespaces
#   scripts/mpi_netns.sh -- CMD ARGS...  # any command with NUDGE_MPIRUN set (e.g. a nudge run)
set -euo pipefail
cd "$(dirname "$0")/.."

A=nudge-mpi-a B=nudge-mpi-b
SUBNET=10.77.0.0/24 IP_A=10.77.0.1 IP_B=10.77.0.2
agent_dir=""
cleanup() {
    ip netns del "$A" 2>/dev/null || true
    ip netns del "$B" 2>/dev/null || true
    if [[ -n "$agent_dir" ]]; then rm -rf "$agent_dir"; fi
}
cleanup  # namespaces left by an interrupted earlier run
trap cleanup EXIT
agent_dir="$(mktemp -d)"
agent="$agent_dir/netns-agent.sh"

ip netns add "$A"
ip netns add "$B"
ip link add veth-nudge-a type veth peer name veth-nudge-b
ip link set veth-nudge-a netns "$A"
ip link set veth-nudge-b netns "$B"
ip -n "$A" addr add "$IP_A/24" dev veth-nudge-a
ip -n "$B" addr add "$IP_B/24" dev veth-nudge-b
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set veth-nudge-a up
ip -n "$B" link set veth-nudge-b up
ip -n "$A" route get "$IP_B" >/dev/null

# Open MPI's rsh launcher calls `agent HOST COMMAND...` as it would call ssh; the command is a
# shell command line, run here inside the host's namespace.
cat > "$agent" <<AGENT
#!/usr/bin/env bash
host="\$1"; shift
case "\$host" in
    $IP_A) ns=$A ;;
    $IP_B) ns=$B ;;
    *) echo "netns agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" /bin/sh -c "\$*"
AGENT
chmod +x "$agent"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export NUDGE_MPIRUN="ip netns exec $A mpirun.openmpi -np 2 --host $IP_A:1,$IP_B:1 --oversubscribe \
--mca plm_rsh_agent $agent --mca btl tcp,self --mca btl_tcp_if_include $SUBNET --mca oob_tcp_if_include $SUBNET \
-x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM -x NUDGE_THREADS -x PATH"
export NUDGE_THREADS="${NUDGE_THREADS:-1}"

if [[ "${1:-}" == "--" ]]; then
    shift
    "$@"
else
    # Each rank says which namespace (address) it runs in, then the job tests.
    $NUDGE_MPIRUN /bin/sh -c 'echo "rank $OMPI_COMM_WORLD_RANK: $(ip -4 -o addr show | grep -o "10\.77\.0\.[0-9]*")"'
    NUDGE_MPI_TESTS=1 swift test --skip-build --filter MPIJobTests
fi
