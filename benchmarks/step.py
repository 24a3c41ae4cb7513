"""Model step benchmark: one MMNet training step, the official fp32 step against this project's variants.

Why: the official code (github.com/muse1998/MMNet, ``CASME2_5.py``) trains in fp32, contiguous, with AdamW's
for-loop kernel. Goal from issue 7: the step ``mer.training.loop`` runs >= 2.5x faster than that. Same model
(``build_model("mmnet", 5, 3)``: full width, 224 x 224), same batch, same machine; the variants alternate
within each repetition so that other load hits all of them. Each variant's FLOP/s is printed as a fraction of
the GEMM peak of its precision, measured in the same run. The script PRINTS figures and asserts nothing.

Forward + backward + AdamW step at batch 8 and 32: fp32 baseline against channels_last, bf16 autocast,
foreach / fused AdamW, all combined, the loop's default and that with grad checkpointing; torch.compile of the
fastest in a child process with a time limit. Then where the default step's time goes: one step of it under
torch.profiler, forward / backward / optimiser and the top operators by self CPU time, beside its fraction of the
bf16 GEMM peak measured between its timed steps. ``epoch.py`` and ``loso.py`` build on ``Step`` and ``Variant``.
The process fixes glibc's mmap threshold as a fold's process does (``mer.training.allocator``).

Run from the repository root: ``python benchmarks/step.py [--quick]`` (needs no data: the inputs are random).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from common import BATCH, CLASSES, SIZE, gemm_gflops, in_child, load, machine, timed
from torch import Tensor
from torch.profiler import ProfilerActivity, profile, record_function
from torch.utils.flop_counter import FlopCounterMode

from mer.models import build_model
from mer.training import allocator
from mer.training.device import native_bf16

CPU = torch.device("cpu")
STEP_GOAL = 2.5


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run or --quick."""

    step_batches: tuple[int, ...]
    warmup: dict[int, int]
    timed: dict[int, int]
    compile_limit: float  # seconds; 0 skips torch.compile


FULL = Plan(step_batches=(8, BATCH), warmup={8: 2, BATCH: 1}, timed={8: 3, BATCH: 2}, compile_limit=240)
QUICK = Plan(step_batches=(8,), warmup={8: 1}, timed={8: 2}, compile_limit=0)


@dataclass(frozen=True)
class Variant:
    name: str
    channels_last: bool = False
    autocast: torch.dtype | None = None  # bf16 on CPU; fp16 (with GradScaler) is CUDA AMP
    adamw: str = "for-loop"  # for-loop (foreach=False) | foreach | fused
    checkpointing: bool = False  # model.set_grad_checkpointing (train.grad_checkpointing)

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def optimiser(self, params: Iterator[Tensor]) -> torch.optim.AdamW:
        """The official optimiser settings (lr 8e-4, weight decay 0.6) with this variant's kernel."""
        kernel = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[self.adamw]
        return torch.optim.AdamW(params, lr=8e-4, weight_decay=0.6, **kernel)


BASELINE = Variant("fp32 baseline (contiguous, AdamW foreach=False)")


class Step:
    """One MMNet training step of a variant; model and optimiser persist across calls, as in training."""

    def __init__(self, variant: Variant, device: torch.device = CPU, compiled: bool = False) -> None:
        torch.manual_seed(0)
        self.variant, self.device = variant, device
        self.model = build_model("mmnet", CLASSES, 3).to(device, memory_format=variant.memory_format)
        self.model.set_grad_checkpointing(variant.checkpointing)
        self.forward = torch.compile(self.model) if compiled else self.model
        self.optimiser = variant.optimiser(self.model.parameters())
        self.scaler = torch.amp.GradScaler(device.type, enabled=variant.autocast == torch.float16)

    def __call__(self, motion: Tensor, onset: Tensor, labels: Tensor) -> Tensor:
        """The step on one batch; returns the logits (detached)."""
        fmt = self.variant.memory_format
        motion, onset = (x.to(self.device).contiguous(memory_format=fmt) for x in (motion, onset))
        autocast = (
            torch.autocast(self.device.type, dtype=self.variant.autocast)
            if self.variant.autocast
            else contextlib.nullcontext()
        )
        with record_function("forward"), autocast:
            logits = self.forward(motion, onset)
            loss = F.cross_entropy(logits.float(), labels.to(self.device))
        self.optimiser.zero_grad(set_to_none=True)
        with record_function("backward"):
            self.scaler.scale(loss).backward()
        with record_function("optimiser"):
            self.scaler.step(self.optimiser)
            self.scaler.update()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return logits.detach()


def fake_batch(batch: int) -> tuple[Tensor, Tensor, Tensor]:
    """Inputs of the right shape and range: timing does not depend on the pixel values."""
    generator = torch.Generator().manual_seed(batch)
    onset = torch.rand(batch, 3, SIZE, SIZE, generator=generator)
    motion = 0.1 * torch.randn(batch, 3, SIZE, SIZE, generator=generator)
    return motion, onset, torch.randint(0, CLASSES, (batch,), generator=generator)


def fused_adamw_supported() -> bool:
    try:
        parameter = torch.nn.Parameter(torch.ones(2))
        parameter.grad = torch.ones(2)
        torch.optim.AdamW([parameter], fused=True).step()
        return True
    except (RuntimeError, TypeError) as error:
        print(f"fused AdamW on CPU: not supported ({str(error).splitlines()[0]})")
        return False


def variants() -> list[Variant]:
    """Baseline, each option alone, and every supported option together."""
    bf16 = native_bf16(torch.device("cpu"))
    print(
        f"bf16 autocast: CPU {'has' if bf16 else 'lacks'} native bf16 (avx512_bf16 "
        f"{torch.cpu._is_avx512_bf16_supported()}, AMX {torch.cpu._is_amx_tile_supported()})"
        + ("" if bf16 else ": skipped, it would run emulated")
    )
    fused = fused_adamw_supported()
    found = [BASELINE, Variant("channels_last", channels_last=True)]
    if bf16:
        found.append(Variant("bf16 autocast", autocast=torch.bfloat16))
    found.append(Variant("foreach AdamW", adamw="foreach"))
    if fused:
        found.append(Variant("fused AdamW", adamw="fused"))
    combined = Variant(
        " + ".join(["channels_last"] + ["bf16"] * bf16 + [f"{'fused' if fused else 'foreach'} AdamW"]),
        channels_last=True,
        autocast=torch.bfloat16 if bf16 else None,
        adamw="fused" if fused else "foreach",
    )
    ours = loop_default()
    checkpointed = Variant(
        f"{ours.name[:-1]} + grad checkpointing)", channels_last=True, autocast=ours.autocast, checkpointing=True
    )
    return [*found, combined, ours, checkpointed]


def loop_default() -> Variant:
    """The step `mer.training.loop` runs with `train.precision: auto`: channels_last, bf16 autocast where the CPU
    has native bf16, AdamW's default kernel."""
    bf16 = native_bf16(CPU)
    return Variant(
        f"mer.training.loop default (channels_last{' + bf16' * bf16})",
        channels_last=True,
        autocast=torch.bfloat16 if bf16 else None,
    )


def time_steps(steps: dict[str, Step], batch: int, warmup: int, reps: int) -> dict[str, list[float]]:
    """Seconds per step of every variant, the variants alternating within each repetition."""
    data = fake_batch(batch)
    for _ in range(warmup):
        for step in steps.values():
            step(*data)
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(reps):
        for name, step in steps.items():
            seconds[name].append(timed(lambda s=step: s(*data))[0])
    return seconds


def step_gflop(batch: int) -> float:
    """GFLOP of one step's forward + backward at `batch`, as torch's FlopCounterMode counts them (the
    convolutions and matmuls; the optimiser and elementwise work are not counted)."""
    model = build_model("mmnet", CLASSES, 3)
    motion, onset, labels = fake_batch(batch)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(motion, onset), labels).backward()
    return counter.get_total_flops() / 1e9


def gemm_peaks() -> dict[str, float]:
    """GEMM GFLOP/s per precision the variants use, measured now on the same threads."""
    peaks = {"fp32": gemm_gflops(torch.float32)}
    if native_bf16(CPU):
        peaks["bf16"] = gemm_gflops(torch.bfloat16)
    print("GEMM peak (2048^2 matmul, best of 5): " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()))
    return peaks


def print_steps(
    seconds: dict[str, list[float]],
    batch: int,
    reps: int,
    steps: dict[str, Step],
    gflop: float,
    peaks: dict[str, float],
) -> dict[str, float]:
    """The table of one batch size, with each variant's FLOP/s against the GEMM peak of the precision it runs
    in; returns the best s/step per variant."""
    best = {name: min(s) for name, s in seconds.items()}
    base = best[BASELINE.name]
    print(
        f"\nbatch {batch} ({reps} timed steps per variant, alternating; best of {reps}, median, max; "
        f"{gflop:.1f} GFLOP forward + backward per step)"
    )
    print(
        f"{'variant':<48}{'s/step':>8}{'median':>8}{'max':>7}{'s/sample':>10}{'x fp32':>8}{'GFLOP/s':>9}{'of GEMM':>9}"
    )
    for name, s in seconds.items():
        precision = "bf16" if steps[name].variant.autocast == torch.bfloat16 else "fp32"
        achieved = gflop / best[name]
        print(
            f"{name:<48}{best[name]:>8.2f}{statistics.median(s):>8.2f}{max(s):>7.2f}{best[name] / batch:>10.3f}"
            f"{base / best[name]:>8.2f}{achieved:>9.1f}{achieved / peaks[precision]:>8.0%} {precision}"
        )
    return best


def model_step(plan: Plan) -> tuple[dict[str, Step], dict[int, dict[str, float]]]:
    """Print the variant tables; return the (warmed) steps and best s/step per batch and variant."""
    print(
        f"\nModel step: MMNet full width, {SIZE} px, forward + backward + AdamW step, CPU, "
        f"{torch.get_num_threads()} torch threads. mer.training.loop runs channels_last, with bf16 autocast where "
        f"the CPU has native bf16 (train.precision auto) and AdamW's default (the for-loop kernel on CPU)"
    )
    steps = {v.name: Step(v) for v in variants()}
    peaks = gemm_peaks()
    bests = {}
    for batch in plan.step_batches:
        seconds = time_steps(steps, batch, plan.warmup[batch], plan.timed[batch])
        bests[batch] = print_steps(seconds, batch, plan.timed[batch], steps, step_gflop(batch), peaks)
    for batch, best_s in bests.items():
        best = min(best_s, key=best_s.get)
        ratio = best_s[BASELINE.name] / best_s[best]
        print(
            f"batch {batch}: fastest is {best}, {ratio:.2f}x the official fp32 step: goal >= {STEP_GOAL}x "
            f"{'MET' if ratio >= STEP_GOAL else 'NOT met'}"
        )
    return steps, bests


def compiled_step(variant: Variant, batch: int, reps: int, cache_dir: str) -> dict[str, float | list[float]]:
    """In a child process: compile time, then eager and compiled steps of `variant`, alternating."""
    import torch._inductor.config as inductor_config

    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache_dir  # a cold cache: the first compile on a machine
    torch.set_num_threads(os.cpu_count() or 1)
    allocator.configure()  # as a fold's process does (mer.training.device.choose)
    inductor_config.compile_threads = 1  # no compile worker pool to outlive a killed child
    data = fake_batch(batch)
    eager, compiled = Step(variant), Step(variant, compiled=True)
    eager(*data)
    compile_s = timed(lambda: compiled(*data))[0]
    compiled(*data)
    seconds: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(reps):
        seconds["eager"].append(timed(lambda: eager(*data))[0])
        seconds["compiled"].append(timed(lambda: compiled(*data))[0])
    return {"compile_s": compile_s, **seconds}


def try_compile(variant: Variant, batch: int, reps: int, limit: float, tmp: Path) -> None:
    """torch.compile (inductor) of `variant` in a spawned child, killed after `limit` seconds."""
    print(f"\ntorch.compile of '{variant.name}', batch {batch}, cold inductor cache, time limit {limit:.0f} s:")
    if limit <= 0:
        print("skipped with --quick (compiling MMNet's training graph took 60-90 s on this machine)")
        return
    try:
        r = in_child(compiled_step, (variant, batch, reps, str(tmp / "inductor")), timeout=limit)
    except TimeoutError:
        print(f"no result within {limit:.0f} s: compile plus {reps} steps took too long; child killed")
        return
    except RuntimeError as error:
        print(f"failed: {str(error).splitlines()[0]}")
        return
    eager, compiled = min(r["eager"]), min(r["compiled"])
    print(
        f"first call (compile + step) {r['compile_s']:.1f} s; then eager {eager:.2f} s/step, compiled "
        f"{compiled:.2f} s/step (best of {reps} alternating steps): compiled is {eager / compiled:.2f}x eager "
        f"({'faster' if compiled < eager else 'SLOWER'})"
    )


PHASES = ("forward", "backward", "optimiser")  # Step.__call__'s record_function scopes


def operator_times(step: Step, data: tuple[Tensor, Tensor, Tensor]) -> dict[tuple[str, str], list[float]]:
    """(phase, operator) -> [self CPU ms, calls] of one profiled step. An operator's self time is its wall time on
    the calling thread less that of the operators it calls; the autograd engine runs a CPU backward on the calling
    thread, so every operator falls under one of the step's scopes."""
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        step(*data)
    times: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    for event in profiler.events():
        root = event
        while root.cpu_parent is not None:
            root = root.cpu_parent
        phase = root.name if root.name in PHASES else "other"
        times[phase, event.name][0] += event.self_cpu_time_total / 1e3
        times[phase, event.name][1] += 1
    return times


def profile_step(variant: Variant, batch: int, reps: int, gflop: float, rows: int = 15) -> None:
    """Where `variant`'s step spends its time: the top operators by self CPU time, forward, backward and optimiser
    apart, beside the step's fraction of the GEMM peak. Steps and GEMMs alternate, so both see the same load."""
    precision = "bf16" if variant.autocast == torch.bfloat16 else "fp32"
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    step, data = Step(variant), fake_batch(batch)
    step(*data)
    step_s, gemm = [], []
    for _ in range(reps):
        gemm.append(gemm_gflops(dtype, reps=2))
        step_s.append(timed(lambda: step(*data))[0])
    times = operator_times(step, data)
    profiled = sum(ms for ms, _ in times.values())
    achieved = gflop / min(step_s)
    print(
        f"\nProfile of '{variant.name}', batch {batch}, {torch.get_num_threads()} threads ({load()}): step "
        f"{min(step_s):.2f} s (best of {reps}, unprofiled), {achieved:.0f} GFLOP/s = {achieved / max(gemm):.0%} of "
        f"the {precision} GEMM peak ({max(gemm):.0f} GFLOP/s, measured between the steps); profiled step "
        f"{profiled / 1e3:.2f} s"
    )
    phase_ms = {phase: sum(ms for (p, _), (ms, _) in times.items() if p == phase) for phase in (*PHASES, "other")}
    print("by phase: " + ", ".join(f"{p} {ms / profiled:.0%}" for p, ms in phase_ms.items() if ms))
    print(f"{'phase':<10}{'operator (top by self CPU time)':<58}{'calls':>6}{'self ms':>9}{'of step':>9}")
    for (phase, name), (ms, calls) in sorted(times.items(), key=lambda item: -item[1][0])[:rows]:
        print(f"{phase:<10}{name[:57]:<58}{calls:>6}{ms:>9.1f}{ms / profiled:>9.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="batch 8 only, no torch.compile")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    print(machine(("torch", "numpy")))
    started = time.perf_counter()
    steps, bests = model_step(plan)
    batch = max(plan.step_batches)
    variant = steps[min(bests[batch], key=bests[batch].get)].variant
    del steps  # the profiled step and the compile child should not compete with ~1 GB of models and optimisers
    profile_step(loop_default(), batch, plan.timed[batch] + 1, step_gflop(batch))
    with tempfile.TemporaryDirectory(prefix="mer-bench-step-") as tmp:
        try_compile(variant, 8, 3, plan.compile_limit, Path(tmp))
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s; {load()}")


if __name__ == "__main__":
    main()
