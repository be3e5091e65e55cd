"""The `--all DIR` mode shared by the mixer oracles (tools/oracle_*.py).

Each oracle lists the committed fixtures it makes as FIXTURES, file name ->
its own command-line arguments; `make parity` runs every oracle with
`--all DIR`, so adding a mixer's fixture touches only its oracle.
"""
import os
import subprocess
import sys


def make_all(script, fixtures, out_dir):
    """Runs script once per fixture, writing out_dir/NAME.safetensors."""
    os.makedirs(out_dir, exist_ok=True)
    for name, args in fixtures.items():
        out = os.path.join(out_dir, name + ".safetensors")
        subprocess.run([sys.executable, script, *args, "--out", out], check=True)


def all_mode(script, fixtures):
    """True (after making every fixture) when the command line is --all DIR."""
    if len(sys.argv) == 3 and sys.argv[1] == "--all":
        make_all(script, fixtures, sys.argv[2])
        return True
    return False
