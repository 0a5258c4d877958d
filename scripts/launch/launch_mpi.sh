#!/usr/bin/env bash
# Launches a data-parallel anchor-rl run with OpenMPI's mpirun and the flags such runs want:
#   scripts/launch/launch_mpi.sh -np 8 build/anchor-rl train configs/smollm2_grpo.yaml
#   scripts/launch/launch_mpi.sh -np 16 --hostfile hosts build/anchor-rl train cfg.yaml   # 2 nodes x 8 GPUs
# Everything is passed to mpirun; added in front:
#   --bind-to none        each rank sets its own CPU thread count (cores / ranks on the node)
#   --allow-run-as-root   only when running as root (containers)
#   -x ANCHOR_*           forwards anchor-rl's environment (e.g. ANCHOR_COLLECTIVE_TIMEOUT) to remote nodes
# Under SLURM use srun instead: srun --mpi=pmix -N 2 --ntasks-per-node=8 --gpus-per-task=1 build/anchor-rl train cfg.yaml
set -euo pipefail
command -v mpirun >/dev/null || { echo "launch_mpi.sh: mpirun not found (apt install openmpi-bin)" >&2; exit 1; }
flags=(--bind-to none)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
for var in $(env | sed -n 's/^\(ANCHOR_[A-Z_]*\)=.*/\1/p'); do flags+=(-x "$var"); done
exec mpirun "${flags[@]}" "$@"
