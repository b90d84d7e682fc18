"""Every Triton kernel compiles for sm_90 (the H200) at its GPU block configurations — on this CPU.

Runs in a subprocess without TRITON_INTERPRET (the test process interprets kernels instead).
"""

import os
import subprocess
import sys

import pytest

from pgcnn_triton.kernels import _compile


@pytest.mark.long(40)
def test_every_kernel_compiles_for_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-m", "pgcnn_triton.kernels._compile"], env=env,
                          capture_output=True, text=True, timeout=900)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not [line for line in lines if line.startswith("FAIL")]
    names = [line.split(":")[0][5:] for line in lines if line.startswith("ok")]
    # each op module contributes cases, and the group conv covers forward, bank gradient and pooling
    for module in _compile.MODULES:
        assert module in {"bank_triton", "group_conv_triton", "group_pool_triton"}
    assert any(n.startswith("group_conv bf16") for n in names)
    assert any(n.startswith("group_conv bank_grad") for n in names)
    assert any("pool" in n and n.startswith("group_conv") for n in names)
    assert any(n.startswith("bank") for n in names) and any(n.startswith("group_pool") for n in names)
