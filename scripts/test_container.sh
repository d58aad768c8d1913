#!/usr/bin/env bash
# Build the bids-deepwmh image and run it as users and clusters do (not part of the pytest run):
# no network, the BIDS folder read-only, a read-only root filesystem with only a tmpfs /tmp, an
# arbitrary non-root UID without a home (what Apptainer imposes).  Runs --version, --help, a usage
# error, the participant level on the synthetic test dataset and the group level; checks the exit
# codes, the outputs (scripts/check_container_outputs.py, inside the image) and that the container
# wrote nothing outside the output and work folders.  Needs podman.
#
# On a machine with no registry and a TLS-inspecting proxy (as the one it was written on):
#   scripts/test_container.sh --local-base --host-ca \
#       --torch-wheel /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl \
#       --templateflow-home /work/shared/data/templateflow
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/test_container.sh [options]
  --image NAME              tag of the image to build and test (default: localhost/deepwmh:test)
  --no-build                test NAME as it is, without building it
  --base-image IMAGE        base image (a Debian bookworm image; default: the Dockerfile's)
  --local-base              build the base with mmdebstrap and podman import (no registry needed);
                            kept as localhost/deepwmh-base for later builds
  --torch cpu|cuda          torch variant (default: cpu, the smaller image)
  --torch-wheel FILE        a torch CPU wheel (cp311) to install instead of downloading one
  --templateflow-home DIR   copy the template files from this TemplateFlow home instead of
                            downloading them at build time
  --host-ca                 mount this machine's CA bundle into the build (TLS-inspecting proxies)
  --nprocs N                CPUs the participant level may use (default: all)
  --keep                    keep the synthetic dataset and outputs (their folder is printed)
EOF
}

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGE=localhost/deepwmh:test
BUILD=1
BASE_IMAGE=""
LOCAL_BASE=0
TORCH_VARIANT=cpu
TORCH_WHEEL=""
TEMPLATEFLOW_HOME_DIR=""
HOST_CA=0
NPROCS="$(nproc)"
KEEP=0
RUN_USER=12345:12345  # arbitrary, in no passwd file; its HOME does not exist

while [ $# -gt 0 ]; do
    case "$1" in
        --image) IMAGE="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --base-image) BASE_IMAGE="$2"; shift 2 ;;
        --local-base) LOCAL_BASE=1; shift ;;
        --torch) TORCH_VARIANT="$2"; shift 2 ;;
        --torch-wheel) TORCH_WHEEL="$2"; shift 2 ;;
        --templateflow-home) TEMPLATEFLOW_HOME_DIR="$2"; shift 2 ;;
        --host-ca) HOST_CA=1; shift ;;
        --nprocs) NPROCS="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "test_container.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

command -v podman >/dev/null || { echo "test_container.sh: podman is not installed" >&2; exit 2; }
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/deepwmh-container-test.XXXXXX")"
COPIED=()  # what this script put into the build context, removed at the end
cleanup() {
    for path in "${COPIED[@]}"; do rm -rf "$path"; done
    podman rm -f deepwmh-test-participant deepwmh-test-baseline >/dev/null 2>&1 || true
    if [ "$KEEP" = 0 ]; then rm -rf "$SCRATCH"; else echo "outputs kept in $SCRATCH"; fi
}
trap cleanup EXIT
FAILURES=0
fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
pass() { echo "ok: $*"; }
START=$(date +%s)

# --- the base image -------------------------------------------------------------------------
if [ "$LOCAL_BASE" = 1 ]; then
    BASE_IMAGE=localhost/deepwmh-base
    if ! podman image exists "$BASE_IMAGE"; then
        command -v mmdebstrap >/dev/null || { echo "--local-base needs mmdebstrap" >&2; exit 2; }
        echo "== building $BASE_IMAGE (Debian bookworm, python3) with mmdebstrap"
        mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$SCRATCH/base.tar"
        podman import "$SCRATCH/base.tar" "$BASE_IMAGE"
        rm -f "$SCRATCH/base.tar"
    fi
fi

# --- the image ------------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
    build=(podman build --network host -t "$IMAGE" --build-arg "TORCH_VARIANT=$TORCH_VARIANT")
    [ -n "$BASE_IMAGE" ] && build+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
    [ "$HOST_CA" = 1 ] && build+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
    if [ -n "$TORCH_WHEEL" ]; then
        [ -f "$TORCH_WHEEL" ] || { echo "--torch-wheel: no file $TORCH_WHEEL" >&2; exit 2; }
        COPIED+=("$REPO/container/wheels/$(basename "$TORCH_WHEEL")")
        cp "$TORCH_WHEEL" "$REPO/container/wheels/"
    fi
    if [ -n "$TEMPLATEFLOW_HOME_DIR" ]; then
        tpl="$TEMPLATEFLOW_HOME_DIR/tpl-MNI152NLin2009cAsym"
        [ -d "$tpl" ] || { echo "--templateflow-home: no $tpl" >&2; exit 2; }
        COPIED+=("$REPO/container/templateflow/tpl-MNI152NLin2009cAsym")
        cp -rL "$tpl" "$REPO/container/templateflow/"
        build+=(--build-arg TEMPLATEFLOW_SOURCE=build-context)
    fi
    echo "== ${build[*]} $REPO"
    build_start=$(date +%s)
    "${build[@]}" "$REPO"
    echo "image built in $(( $(date +%s) - build_start )) s"
fi
SIZE_BYTES="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
echo "image $IMAGE: $(( SIZE_BYTES / 1000000 )) MB"

# --- how podman runs containers here ---------------------------------------------------------
# The default runtime (crun) fails on some hosts' cgroups, where runc with cgroupfs works; in
# sandboxes that may not raise resource limits, podman's default ulimits must be lowered too.
PODMAN=(podman)
LIMITS=()
runs() { "${PODMAN[@]}" run --rm "${LIMITS[@]}" --network none "$IMAGE" --version >/dev/null 2>&1; }
if ! runs; then
    PODMAN=(podman --runtime runc --cgroup-manager cgroupfs)
    if ! runs; then
        LIMITS=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=16384:16384)
        runs || { echo "test_container.sh: podman cannot run $IMAGE (crun; runc with cgroupfs; lower" \
                       "ulimits): see \`podman run --rm $IMAGE --version\`" >&2; exit 1; }
    fi
    echo "(podman runs containers here as: ${PODMAN[*]} run ${LIMITS[*]})"
fi
# As users and clusters run it: no network, read-only image, only /tmp writable, no home.
RUN=("${PODMAN[@]}" run "${LIMITS[@]}" --network none --read-only --tmpfs /tmp --user "$RUN_USER" -e HOME=/nonexistent)

expect_code() {  # expect_code CODE DESCRIPTION COMMAND...: run, compare the exit code
    local expected="$1" what="$2"; shift 2
    local code=0
    "$@" >"$SCRATCH/last.log" 2>&1 || code=$?
    if [ "$code" = "$expected" ]; then pass "$what (exit $code)"; else
        fail "$what: exit $code, expected $expected"; tail -n 30 "$SCRATCH/last.log"; fi
}

# --- --version, --help, a usage error --------------------------------------------------------
expect_code 0 "--version" "${RUN[@]}" --rm "$IMAGE" --version
grep -q "^bids-deepwmh [0-9]" "$SCRATCH/last.log" || fail "--version printed: $(cat "$SCRATCH/last.log")"
expect_code 0 "--help" "${RUN[@]}" --rm "$IMAGE" --help
grep -q -- "--omp-nthreads" "$SCRATCH/last.log" || fail "--help does not list --omp-nthreads"

# --- the synthetic test dataset (made by the image itself) ------------------------------------
mkdir -p "$SCRATCH/data" "$SCRATCH/out" "$SCRATCH/work"
chmod 0777 "$SCRATCH/data" "$SCRATCH/out" "$SCRATCH/work"  # writable by the arbitrary UID
expect_code 0 "synthetic dataset written" "${RUN[@]}" --rm -e HOME=/tmp -v "$SCRATCH/data:/data" --entrypoint python "$IMAGE" \
    -c "from bids_deepwmh.synthetic_dataset import write_dataset; write_dataset('/data/bids')"
BIDS="$SCRATCH/data/bids"
[ -f "$BIDS/dataset_description.json" ] || { fail "no synthetic dataset"; exit 1; }
checksums() { (cd "$1" && find . -type f -exec sha256sum {} + | sort); }
checksums "$BIDS" >"$SCRATCH/bids-before.sha256"
MOUNTS=(-v "$BIDS:/data:ro" -v "$SCRATCH/out:/out" -v "$SCRATCH/work:/work")

expect_code 2 "usage error: output folder inside the input" "${RUN[@]}" --rm "${MOUNTS[@]}" "$IMAGE" \
    /data /data/out participant -w /work

# --- participant level, then group level -----------------------------------------------------
participant_start=$(date +%s)
expect_code 0 "participant level" "${RUN[@]}" --name deepwmh-test-participant "${MOUNTS[@]}" "$IMAGE" \
    /data /out participant -w /work --nprocs "$NPROCS" --omp-nthreads "$NPROCS" --mem-gb 8
echo "participant level: $(( $(date +%s) - participant_start )) s"
tail -n 5 "$SCRATCH/last.log"
# What the run changed in the container's filesystem, beyond what the engine itself changes when it
# starts the same container doing nothing (mount points, /etc/passwd and /etc/hosts).
"${RUN[@]}" --name deepwmh-test-baseline "${MOUNTS[@]}" --entrypoint true "$IMAGE"
written="$(diff <("${PODMAN[@]}" diff deepwmh-test-baseline | sort) \
               <("${PODMAN[@]}" diff deepwmh-test-participant | sort) | grep '^>' || true)"
if [ -z "$written" ]; then pass "nothing written in the container's filesystem (podman diff)"; else
    fail "the run wrote in the container's filesystem: $written"; fi
"${PODMAN[@]}" rm deepwmh-test-participant deepwmh-test-baseline >/dev/null
expect_code 0 "group level" "${RUN[@]}" --rm "${MOUNTS[@]}" "$IMAGE" \
    /data /out group -w /work --manual-masks /data/derivatives/manual

# --- outputs ---------------------------------------------------------------------------------
expect_code 0 "outputs valid (names, grids, binary masks, reports, tables, BIDS validator)" \
    "${RUN[@]}" --rm -v "$BIDS:/data:ro" -v "$SCRATCH/out:/out:ro" -v "$REPO/scripts:/check:ro" \
    -e HOME=/tmp --entrypoint python "$IMAGE" /check/check_container_outputs.py /data /out
cat "$SCRATCH/last.log"
checksums "$BIDS" | cmp -s - "$SCRATCH/bids-before.sha256" && pass "the BIDS folder is unchanged" \
    || fail "the BIDS folder changed"

echo "== image $IMAGE: $(( SIZE_BYTES / 1000000 )) MB; wall time $(( $(date +%s) - START )) s; $FAILURES failure(s)"
[ "$FAILURES" = 0 ]
