#!/usr/bin/env python3
"""edgepack's latency probe: time one .tflite model as LiteRT's benchmark_model does; print JSON.

Standalone (stdlib, numpy and ai-edge-litert, tflite-runtime or tf.lite), so ``edgepack profile
--remote`` copies this one file to a device: ``python3 latency_probe.py MODEL --runs N --warmup N
--min-seconds S --max-seconds S --threads T [--delegate LIB] [--op-profile] [--inputs NPZ]``.
Method (benchmark_model's): the model is loaded from bytes (the verifier runs); init time covers the
interpreter, delegate and tensor allocation; the first inference is the first warm-up run; warm-up
and timed runs go on until both a count and a time are reached, capped by --max-seconds; only
invoke() is timed; std is the population one. stdout holds one JSON document (runtime chatter goes
to stderr). Exit codes: 1 bug, 2 usage, 3 numpy/runtime missing, 4 model rejected, 5 delegate/accelerator, 6 inputs.
"""

import argparse
import faulthandler
import json
import os
import sys
import threading
import time

SCHEMA = "edgepack-device-probe/1"
EXIT = {"internal": 1, "usage": 2, "missing-dependency": 3, "model": 4, "delegate": 5, "accelerator": 5, "inputs": 6}
RUNTIMES = {"litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),  # name: (module, distribution)
            "tflite-runtime": ("tflite_runtime.interpreter", "tflite-runtime"),
            "tf.lite": ("tensorflow.lite", "tensorflow")}
INSTALL = "pip install ai-edge-litert  (or, where it has no wheel: pip install tflite-runtime 'numpy<2')"
_OUT = sys.stdout


MAX_SAMPLES = 5000  # timing samples sent back for the histogram (about 60 KB of JSON)


def emit(document):
    """Print ``document`` as the one JSON line on the real stdout."""
    _OUT.write(json.dumps(dict({"schema": SCHEMA}, **document)) + "\n")
    _OUT.flush()


def fail(kind, message, **extra):
    emit({"ok": False, "error": dict({"kind": kind, "message": message}, **extra), "python": sys.version.split()[0]})
    sys.exit(EXIT[kind])


def stage(name):
    """Tell the host what the probe is doing, so a crash can be placed (stderr, one line)."""
    sys.stderr.write("@@stage %s\n" % name)
    sys.stderr.flush()


OPTIONS = [("--runs", int, 50), ("--warmup", int, 1), ("--warmup-seconds", float, 0.5),
           ("--min-seconds", float, 1.0), ("--max-seconds", float, 150.0), ("--threads", int, None),
           ("--delegate", str, None), ("--inputs", str, None), ("--pid-file", str, None), ("--seed", int, 0)]


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="latency_probe.py", description=__doc__.splitlines()[0])
    parser.add_argument("model")
    for flag, kind, default in OPTIONS:  # --threads: default all cores; --inputs: .npz of input_0, ...
        parser.add_argument(flag, type=kind, default=default)
    parser.add_argument("--runtime", choices=["auto"] + list(RUNTIMES), default="auto")
    parser.add_argument("--accelerator", choices=["cpu", "gpu", "npu", "edgetpu"], default="cpu")
    parser.add_argument("--delegate-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--op-profile", action="store_true")
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes (ssh gone)")
    parser.error = lambda message: fail("usage", message)  # one JSON document, even for bad flags
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.min_seconds < 0 or args.max_seconds <= 0 or (args.threads or 1) < 1:
        fail("usage", "need --runs >= 1, --warmup >= 0, --min-seconds >= 0, --max-seconds > 0, --threads >= 1")
    args.threads = args.threads or os.cpu_count() or 1  # every result names its thread count
    return args


def import_numpy():
    try:  # tflite-runtime 2.14 needs numpy<2
        import numpy
    except Exception as exc:  # ImportError, or a broken build
        fail("missing-dependency", "numpy is not importable: %s" % exc, missing="numpy",
             install="pip install numpy  (with tflite-runtime: pip install 'numpy<2')")
    return numpy


def import_runtime(name):
    """``(module, name, version)``; auto tries ai-edge-litert, then tflite-runtime."""
    import importlib
    names, errors = ["litert", "tflite-runtime"] if name == "auto" else [name], []
    for candidate in names:
        module_name, dist = RUNTIMES[candidate]
        try:
            module = importlib.import_module(module_name.replace("tensorflow.lite", "tensorflow"))
            module = module.lite if candidate == "tf.lite" else module
        except Exception as exc:
            errors.append("%s: %s" % (candidate, exc))
            continue
        try:
            from importlib import metadata
            version = metadata.version(dist)
        except Exception:  # Python < 3.8, or installed without metadata
            version = getattr(module, "__version__", "unknown")
        return module, dist if candidate != "tf.lite" else candidate, version
    fail("missing-dependency", "no TFLite runtime is importable (%s)" % "; ".join(errors),
         missing=names[0] if name != "auto" else "runtime", install=INSTALL)


def memory_mb():
    """Peak and current memory of this process: ru_maxrss, and VmHWM/VmRSS where /proc exists."""
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux, bytes on macOS
    found = {"ru_maxrss_mb": round(peak / (1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0), 2)}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    found[line.split(":")[0].lower() + "_mb"] = round(int(line.split()[1]) / 1024.0, 2)
    except OSError:
        pass
    return found


def random_input(np, detail, rng):
    """Random data of the input's dtype over its natural range (benchmark_model's choice)."""
    shape = [int(d) for d in detail["shape"]]
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return rng.uniform(-1.0, 1.0, shape).astype(dtype)
    if dtype.kind in "iu":  # quantized data over its full range; int32/int64 (indices) small
        low, high = (np.iinfo(dtype).min, np.iinfo(dtype).max) if dtype.itemsize <= 2 else (0, 1)
        return (getattr(rng, "integers", None) or rng.randint)(int(low), int(high) + 1, size=shape, dtype=dtype)
    return (rng.uniform(0, 1, shape) >= 0.5).astype(dtype) if dtype.kind == "b" else np.zeros(shape, dtype)


def reshape_refused(exc):
    """True for the error a delegate (XNNPACK) raises when it cannot plan the graph at the inputs' sizes."""
    return "failed to reshape" in str(exc) or "failed to prepare" in str(exc)


def free_dims(detail):
    """Whether the input accepts any size in a dimension after the batch (-1 in its signature)."""
    signature = detail.get("shape_signature")
    return signature is not None and any(int(d) == -1 for d in list(signature)[1:])


def load_inputs(np, path, details):
    """Samples from an .npz (``input_0``... with the samples first), checked against the inputs
    (any size where the model's signature says -1)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = [archive["input_%d" % i] for i in range(len(details))]
    except Exception as exc:
        fail("inputs", "cannot read inputs %s: %s" % (path, exc))
    for i, (array, detail) in enumerate(zip(arrays, details)):
        want = tuple(int(d) for d in (detail["shape_signature"] if free_dims(detail) else detail["shape"])[1:])
        fits = array.ndim == len(want) + 1 and all(w in (-1, a) for w, a in zip(want, array.shape[1:]))
        if not fits or array.dtype != np.dtype(detail["dtype"]):
            fail("inputs", "input_%d has shape %s dtype %s; the model wants (N,)+%s %s"
                 % (i, array.shape, array.dtype, want, np.dtype(detail["dtype"])))
    return [[a[k:k + 1] for a in arrays] for k in range(min(len(a) for a in arrays))]


class InterpreterEngine(object):
    """The classic Interpreter API (all three runtimes), with an optional delegate library."""

    def __init__(self, module, model, threads, delegate, delegate_options):
        delegates = []
        if delegate:
            stage("load-delegate")
            load = getattr(module, "load_delegate", None) or module.experimental.load_delegate
            try:
                delegates = [load(delegate, delegate_options)]
            except (ValueError, OSError, RuntimeError) as exc:
                fail("delegate", "cannot load delegate %s: %s" % (delegate, " ".join(str(exc).split())),
                     delegate=delegate)
        stage("create-interpreter")
        self._make = lambda: module.Interpreter(model_content=model, num_threads=threads,
                                                experimental_delegates=delegates or None)
        try:
            self.it = self._make()
            stage("allocate-tensors")
            try:
                self.it.allocate_tensors()
            except RuntimeError as exc:
                # a free input size stands at 1 until resized; some graphs cannot run at that size (a stride-2
                # convolution then a pooling leaves nothing): they are allocated once sized to the data
                if not (any(free_dims(d) for d in self.it.get_input_details()) and reshape_refused(exc)):
                    raise
        except SystemError as exc:  # tflite-runtime 2.14 under numpy 2
            fail("missing-dependency", "the runtime cannot work with numpy %s (%s)"
                 % (sys.modules["numpy"].__version__, " ".join(str(exc).split())[:200]),
                 missing="numpy<2", install="pip install 'numpy<2'")
        except (ValueError, RuntimeError) as exc:
            text = " ".join(str(exc).split()) or type(exc).__name__
            fail("delegate" if delegates and "delegate" in text.lower() else "model", text)
        self.inputs = self.it.get_input_details()
        self.invoke = self.it.invoke  # a bound method: no extra Python frame inside the timed call

    def set_inputs(self, arrays):
        for detail, array in zip(self.inputs, arrays):
            self.it.set_tensor(detail["index"], array)

    def resize(self, shapes):
        """Size inputs with free dimensions to the data's shapes (one sample each). XNNPACK cannot re-plan
        some graphs once prepared (UpSampling, TransposeConv): a fresh interpreter sized before its first
        allocation runs them."""
        try:
            self._resize(shapes)
        except RuntimeError as exc:
            if not reshape_refused(exc):
                raise
            self.it = self._make()
            self._resize(shapes)
        self.inputs = self.it.get_input_details()

    def _resize(self, shapes):
        for detail, shape in zip(self.inputs, shapes):
            if free_dims(detail):
                self.it.resize_tensor_input(detail["index"], [int(d) for d in shape])
        self.it.allocate_tensors()


class CompiledEngine(object):
    """ai-edge-litert's CompiledModel on a GPU or NPU accelerator (strict: no silent CPU fallback)."""

    def __init__(self, model, threads, accelerator, dispatch_library):
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.environment import Environment, EnvironmentOptions
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import CpuOptions, Options
        stage("create-compiled-model")
        try:
            kwargs = {"options": Options(hardware_accelerators=getattr(HardwareAccelerator, accelerator.upper()),
                                         cpu_options=CpuOptions(num_threads=threads or 0))}
            if dispatch_library:  # an NPU vendor's dispatch library
                kwargs["environment"] = Environment.create(
                    options=EnvironmentOptions(dispatch_library_path=dispatch_library))
            self.model = CompiledModel.from_buffer(model, **kwargs)
        except Exception as exc:
            fail("accelerator", "the %s accelerator could not take the model (no device or driver, or "
                 "operators it cannot run): %s" % (accelerator.upper(), " ".join(str(exc).split())[:400]),
                 accelerator=accelerator)
        self.signature = list(self.model.get_signature_list())[0]
        details = self.model.get_input_tensor_details(self.signature)
        self.inputs = [{"name": k, "shape": v.get("shape", [1]), "dtype": v.get("dtype", "float32")}
                       for k, v in details.items()]
        self.in_buffers = {d["name"]: self.model.create_input_buffer_by_name(self.signature, d["name"])
                           for d in self.inputs}
        self.out_buffers = {k: self.model.create_output_buffer_by_name(self.signature, k)
                            for k in self.model.get_output_tensor_details(self.signature)}
        self.fully_accelerated = bool(self.model.is_fully_accelerated())

    def set_inputs(self, arrays):
        for detail, array in zip(self.inputs, arrays):
            self.in_buffers[detail["name"]].write(array)

    def invoke(self):
        self.model.run_by_name(self.signature, self.in_buffers, self.out_buffers)


def run_loop(engine, feeds, count, min_seconds, max_seconds):
    """benchmark_model's loop: until ``count`` runs and ``min_seconds`` are both done, within ``max_seconds``."""
    clock = time.perf_counter
    engine.set_inputs(feeds[0])  # one feed: set once, as benchmark_model does; several: cycled through
    times, start = [], clock()
    while (len(times) < count or clock() - start < min_seconds) and clock() - start <= max_seconds:
        if len(feeds) > 1:
            engine.set_inputs(feeds[len(times) % len(feeds)])
        begin = clock()
        engine.invoke()
        times.append((clock() - begin) * 1000.0)
    return times


def statistics(np, values):
    array = np.asarray(values, dtype=np.float64)
    return dict({"count": int(array.size), "mean": float(array.mean()), "std": float(array.std()),
                 "min": float(array.min()), "max": float(array.max())},
                **{"p%d" % p: float(np.percentile(array, p)) for p in (50, 90, 99)})


def kept_samples(times, limit=MAX_SAMPLES):
    """The timed runs for the report's histogram: all of them, or every k-th in order when there are
    more than ``limit`` (the statistics above always use every run)."""
    step = -(-len(times) // limit)
    return [round(t, 6) for t in times[::step]]


def watch_stdin():
    """When the host's ssh goes away the channel closes: stop at once rather than run on."""
    def watch():
        while os.read(0, 4096):
            pass
        os._exit(130)
    threading.Thread(target=watch, daemon=True).start()


def main(argv=None):
    global _OUT
    _OUT = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything the runtime prints goes to stderr; stdout carries only our JSON
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.pid_file:  # the host kills this process by its id when the user interrupts
        with open(args.pid_file, "w") as handle:
            handle.write(str(os.getpid()))
    if args.watch_stdin:
        watch_stdin()
    faulthandler.enable()  # a crash prints the Python stack on stderr (shown with --debug)
    stage("import")
    np = import_numpy()
    use_compiled = args.accelerator in ("gpu", "npu") and args.runtime in ("auto", "litert")
    module, runtime, version = import_runtime("litert" if use_compiled else args.runtime)
    memory_before = memory_mb()
    try:
        with open(args.model, "rb") as handle:
            model = handle.read()
    except OSError as exc:
        fail("model", "cannot read %s: %s" % (args.model, exc.strerror))
    begin = time.perf_counter()
    engine = CompiledEngine(model, args.threads, args.accelerator, args.delegate) if use_compiled else \
        InterpreterEngine(module, model, args.threads, args.delegate,
                          dict(item.split("=", 1) for item in args.delegate_option if "=" in item))
    init_ms = (time.perf_counter() - begin) * 1000.0
    rng = np.random.default_rng(args.seed) if hasattr(np.random, "default_rng") else np.random.RandomState(args.seed)
    free = [d["name"] for d in engine.inputs if free_dims(d)]
    if free and not args.inputs:
        fail("inputs", "the model's input %s accepts any size (-1 in its shape); give data of the size to "
             "measure (--data)" % ", ".join(free))
    feeds = load_inputs(np, args.inputs, engine.inputs) if args.inputs else \
        [[random_input(np, d, rng) for d in engine.inputs]]
    if free:
        if not hasattr(engine, "resize"):
            fail("inputs", "inputs of any size are not supported on the %s accelerator" % args.accelerator)
        engine.resize([a.shape for a in feeds[0]])
    stage("warmup")
    warm = run_loop(engine, feeds, max(args.warmup, 1), args.warmup_seconds, args.max_seconds)
    stage("timed-runs")
    timed = run_loop(engine, feeds, args.runs, args.min_seconds, args.max_seconds)
    stage("done")
    emit({"ok": True, "python": sys.version.split()[0], "numpy": np.__version__,
          "runtime": {"name": runtime, "version": version, "engine": "compiled" if use_compiled else "interpreter",
                      "accelerator": args.accelerator, "delegate": args.delegate, "threads": args.threads,
                      "fully_accelerated": getattr(engine, "fully_accelerated", None)},
          "init_ms": init_ms, "first_inference_ms": warm[0],
          "warmup": statistics(np, warm), "latency_ms": dict(statistics(np, timed), samples_ms=kept_samples(timed)),
          "inputs": "file" if args.inputs else "random",
          "memory": {"before_model": memory_before, "peak": memory_mb()},
          "op_profile": {"available": False, "reason": "%s %s has no per-operator timer in its Python API"
                         % (runtime, version)} if args.op_profile else None})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # an unexpected bug: still one JSON document
        fail("internal", "%s: %s" % (type(exc).__name__, exc))
