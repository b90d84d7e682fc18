"""The step profiler's pure parts (benchmarks/profile_step.py) on synthetic events, and the row options
of benchmarks/models.py that a GPU run compares (issue 12)."""

import importlib
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
models = importlib.import_module("models")
profile_step = importlib.import_module("profile_step")
Event = profile_step.Event

# Names as the profiler reports them: cuDNN / CUTLASS / cuBLAS kernels on the H200, inductor's kernels,
# this library's Triton kernels and custom ops, aten ops on CPU.
NAMES = {
    "_conv_kernel": "conv",
    "_bank_grad_kernel": "conv",
    "pgcnn_triton::group_conv2d_backward": "conv",
    "pgcnn_triton::group_conv2d_pool": "conv",
    "sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc_tilesize128x128x64_warpgroupsize1x1x1"
    "_execute_segment_k_off_kernel__5x_cudnn": "conv",
    "sm90_xmma_dgrad_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc_tilesize128x256x64": "conv",
    "sm80_xmma_wgrad_implicit_gemm_indexed_bf16bf16_bf16f32_f32_nhwckrsc_nhwc_tilesize64x64x64": "conv",
    "aten::cudnn_convolution": "conv",
    "aten::convolution_backward": "conv",
    "aten::mkldnn_convolution": "conv",
    "triton_tem_fused_convolution_0": "conv",
    "triton_poi_fused__to_copy_convolution_relu_0": "inductor-fused",
    "triton_red_fused__native_batch_norm_legit_functional_1": "inductor-fused",
    "void cudnn::engines_precompiled::nchwToNhwcKernel<__nv_bfloat16, __nv_bfloat16, float, false, true>": "layout/copy",
    "Memcpy DtoD (Device -> Device)": "layout/copy",
    "Memset (Device)": "layout/copy",
    "void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl_nocast<at::native::"
    "direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}>(at::TensorIteratorBase&)>": "layout/copy",
    "bank_fwd_kernel": "kernel-bank",
    "pgcnn_triton::kernel_bank_backward": "kernel-bank",
    "_group_max_fwd_kernel": "pool",
    "aten::max_pool2d_with_indices": "pool",
    "void at::native::batch_norm_collect_statistics_kernel<float, float, float, int>": "norm",
    "aten::native_batch_norm": "norm",
    "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<at::native::(anonymous namespace)::"
    "TensorListMetadata<4>, at::native::(anonymous namespace)::FusedAdamMathFunctor<float, 4>>": "optimizer",
    "aten::_foreach_add_": "optimizer",
    "nvjet_hsh_128x256_64x4_2x1_v_bz_coopA_NTN": "gemm",
    "ampere_bf16_s16816gemm_bf16_128x64_ldg8_f2f_stages_64x3_tn": "gemm",
    "aten::addmm": "gemm",
    "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>>": "elementwise",
    "void convert_fp32_to_bf16_kernel": "other",
    "aten::empty": "other",
}


@pytest.mark.parametrize("name", NAMES)
def test_classify_kernel_and_op_names(name):
    assert profile_step.classify(name) == NAMES[name]


def test_short_name_drops_noise_and_truncates():
    name = "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<a|b>"
    assert profile_step.short_name(name) == "multi_tensor_apply_kernel<a/b>"
    long = profile_step.short_name("k" * 200, width=40)
    assert len(long) == 40 and long.endswith("…")
    assert profile_step.short_name("  a\n  b ") == "a b"


def test_busy_time_is_the_union_of_intervals():
    assert profile_step.busy_time([]) == 0.0
    # overlapping, touching, nested, unsorted
    assert profile_step.busy_time([(20, 25), (0, 10), (5, 15), (25, 30), (40, 41), (21, 22)]) == 15 + 10 + 1
    assert profile_step.busy_time([(0, 100), (10, 20), (30, 99)]) == 100


def _two_steps():
    """Two steps of 10 ms wall each: a conv kernel twice (3 ms), a fused kernel once (1 ms) overlapping
    the second conv by 0.5 ms (another stream), a memcpy (0.5 ms); all in µs."""
    events = []
    for step in range(2):
        t = step * 10_000
        events += [Event("_conv_kernel", 3000, t, t + 3000, "cuda"),
                   Event("_conv_kernel", 3000, t + 4000, t + 7000, "cuda"),
                   Event("triton_poi_fused_relu_0", 1000, t + 6500, t + 7500, "cuda"),
                   Event("Memcpy HtoD (Pageable -> Device)", 500, t + 8000, t + 8500, "cuda")]
    return events


def test_aggregate_per_step_tables():
    result = profile_step.aggregate(_two_steps(), steps=2, wall_ms=10.0, top=2)
    top = result["kernels"]
    assert [r["name"] for r in top] == ["_conv_kernel", "triton_poi_fused_relu_0"]  # by total time, top 2
    assert top[0]["rank"] == 1 and top[0]["kind"] == "conv"
    assert top[0]["calls_per_step"] == 2 and top[0]["ms_per_step"] == pytest.approx(6.0)
    assert top[0]["pct_of_step"] == pytest.approx(60.0)
    s = result["summary"]
    assert s["kernel_ms"] == pytest.approx(7.5)  # sum of durations
    assert s["busy_ms"] == pytest.approx(7.0)  # the 0.5 ms overlap counts once
    assert s["busy_pct"] == pytest.approx(70.0)
    assert s["launches_per_step"] == 3  # the memcpy is not a launch
    assert s["conv_ms"] == pytest.approx(6.0) and s["other_ms"] == pytest.approx(1.5)
    assert s["conv_pct"] == pytest.approx(80.0)
    kinds = {r["kind"]: r for r in result["kinds"]}
    assert set(kinds) == {"conv", "inductor-fused", "layout/copy"}
    assert result["kinds"][0]["kind"] == "conv"  # largest first
    assert sum(r["ms_per_step"] for r in result["kinds"]) == pytest.approx(s["kernel_ms"])
    assert sum(r["pct_of_kernels"] for r in result["kinds"]) == pytest.approx(100.0)
    assert kinds["layout/copy"]["calls_per_step"] == 1


def test_aggregate_without_events_and_bad_arguments():
    empty = profile_step.aggregate([], steps=3, wall_ms=5.0)
    assert empty["kernels"] == [] and empty["summary"]["busy_ms"] == 0 and empty["summary"]["conv_pct"] == 0
    with pytest.raises(ValueError, match="steps"):
        profile_step.aggregate(_two_steps(), steps=0, wall_ms=10.0)
    with pytest.raises(ValueError, match="wall_ms"):
        profile_step.aggregate(_two_steps(), steps=2, wall_ms=0.0)


def test_report_has_summary_kinds_and_kernels():
    result = profile_step.aggregate(_two_steps(), steps=2, wall_ms=10.0)
    rows = [{"row": "m/train", "table": t, **r} for t in ("kernels", "kinds") for r in result[t]]
    rows += [{"row": "m/train", "table": "summary", **result["summary"]},
             {"row": "g/train", "table": "summary", "note": "g/train skipped: --budget reached"}]
    text = profile_step.report(rows)
    assert "| m/train |" in text and "skipped: --budget reached" in text
    assert "m/train: time per kind" in text and "m/train: top kernels" in text
    assert "g/train: time per kind" not in text


def test_row_options_round_trip_through_names():
    specs = models.gpu_specs()
    name = "ckresnet/train/triton/bf16/compiled/adam-fused/cudnn-nobench"
    (spec,) = models.select(specs, [name])
    assert spec["adam"] == "fused" and spec["cudnn_benchmark"] is False and spec["compile"] is True
    assert models.spec_name(spec) == name
    assert all("/adam" not in models.spec_name(s) and "cudnn" not in models.spec_name(s) for s in specs)
    with pytest.raises(ValueError, match="optional suffixes"):
        models.select(specs, ["ckresnet/train/triton/bf16/compiled/adam-slow"])


def test_optimizer_flavours_and_cudnn_benchmark_restored():
    model = torch.nn.Linear(2, 2)
    assert models.optimizer(model, {"adam": "fused"}).defaults["fused"] is True
    assert models.optimizer(model, {"adam": "foreach"}).defaults["foreach"] is True
    assert not models.optimizer(model, {}).defaults["fused"]
    with pytest.raises(ValueError, match="adam"):
        models.optimizer(model, {"adam": "sgd"})
    saved = torch.backends.cudnn.benchmark
    with models.cudnn_benchmark(not saved):
        assert torch.backends.cudnn.benchmark is (not saved)
    assert torch.backends.cudnn.benchmark is saved
    with models.cudnn_benchmark(None):
        assert torch.backends.cudnn.benchmark is saved


def test_profiler_events_keep_the_wanted_device_without_annotations():
    from types import SimpleNamespace

    from torch.autograd import DeviceType

    def event(name, device, start, end, self_us=0.0, annotation=False, is_async=False):
        return SimpleNamespace(name=name, device_type=device, time_range=SimpleNamespace(start=start, end=end),
                               self_cpu_time_total=self_us, is_user_annotation=annotation, is_async=is_async)

    prof = SimpleNamespace(events=lambda: [
        event("Torch-Compiled Region: 0/0", DeviceType.CPU, 0, 100, 5, annotation=True),
        event("Torch-Compiled Region: 0/0", DeviceType.CUDA, 10, 90, annotation=True),  # gpu_user_annotation
        event("aten::mm", DeviceType.CPU, 1, 9, self_us=6),
        event("async op", DeviceType.CPU, 2, 3, self_us=1, is_async=True),
        event("_conv_kernel", DeviceType.CUDA, 20, 50),
    ])
    assert profile_step.profiler_events(prof, "cuda") == [Event("_conv_kernel", 30, 20, 50, "cuda")]
    assert profile_step.profiler_events(prof, "cpu") == [Event("aten::mm", 6, 1, 9, "cpu")]


def test_device_check_rejects_an_unknown_profile_row_before_measuring(tmp_path):
    device_check = importlib.import_module("device_check")
    with pytest.raises(ValueError, match="unknown rows"):
        device_check.main(["--tiny", "--parts", "correctness,profile", "--profile-rows", "tiny/train/nope",
                           "--out", str(tmp_path)])
    assert not (tmp_path / "results.jsonl").exists()  # the correctness part did not start


def test_profile_row_of_an_eager_torch_step_with_trace(tmp_path):
    import gzip
    import json

    (spec,) = models.select(models.tiny_specs(), ["tiny/train/torch/fp32/eager"])
    result = profile_step.profile_row(spec, torch.device("cpu"), steps=2, warmup=1, top=5, trace=tmp_path / "t.json.gz")
    s = result["summary"]
    assert s["source"] == "cpu ops (self time)" and s["steps"] == 2 and not s["note"]
    assert s["step_ms"] > 0 and 0 < s["busy_ms"] <= s["wall_ms"] * 1.001 and s["conv_ms"] > 0
    assert len(result["kernels"]) == 5
    names = {e["name"] for e in json.loads(gzip.open(tmp_path / "t.json.gz").read())["traceEvents"] if "name" in e}
    assert "pgcnn_triton::group_conv2d" in names
