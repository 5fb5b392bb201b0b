"""The `main` every node shares: init, spin, clean exit codes, no traceback for operator mistakes.

Before spinning, the objects built so far (torch, rclpy, the model: ~180k) are moved out of the
garbage collector's reach with gc.freeze(): they live as long as the node, and a full collection
over them stalled the control loop for ~30 ms (six 200 Hz cycles); later garbage is still collected.

Exit codes: 0 after a normal shutdown (Ctrl-C, SIGTERM, `rclpy.shutdown`), 2 when the node refuses
to start (ConfigError: bad parameter, missing checkpoint ...; a params file or `-p` with a misspelt
key, a wrong type or broken YAML: every problem listed, dmil_ros/ros/params_file.py), 1 on an
unexpected error.
"""

from __future__ import annotations

import gc
import signal
import sys
import traceback
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node

from dmil_ros.ros.interfaces import ConfigError
from dmil_ros.ros.params_file import check_ros_args

EXIT_OK, EXIT_ERROR, EXIT_CONFIG = 0, 1, 2
RCLError = _rclpy.RCLError


def run_node(name: str, make_node: Callable[[], Node], argv: list[str] | None = None,
             threads: int = 1) -> int:
    """Run the node built by `make_node` until shutdown. `argv` excludes the program name."""
    # rclpy's SIGINT handler (installed by init) shuts the context down, which ends spin(), and then
    # calls the handler it found. Python's default one would also raise KeyboardInterrupt at whatever
    # bytecode runs, now and then half-building an object (an rclpy Task without `_exception`:
    # "Exception ignored in Future.__del__" at exit). So the handler underneath only notes the signal
    # (for one that comes before rclpy's handler is in place).
    interrupted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: interrupted.append(signum))
    try:
        return _run(name, make_node, argv, threads, interrupted)
    finally:
        signal.signal(signal.SIGINT, previous)


def _run(name: str, make_node: Callable[[], Node], argv: list[str] | None, threads: int,
         interrupted: list[int]) -> int:
    args = [name, *(sys.argv[1:] if argv is None else argv)]
    problems = check_ros_args(name, args)  # rcl would drop misspelt keys silently, or raise on bad YAML
    if problems:
        print(f"[ERROR] [{name}]: refusing to start: invalid parameters:\n  - " + "\n  - ".join(problems),
              file=sys.stderr, flush=True)
        return EXIT_CONFIG
    try:
        rclpy.init(args=args)
    except RCLError as e:  # what the check above does not catch (rcl's own argument parsing)
        print(f"[ERROR] [{name}]: refusing to start: bad ROS arguments: {' '.join(str(e).split())}",
              file=sys.stderr, flush=True)
        return EXIT_CONFIG
    if interrupted:  # Ctrl-C before rclpy's handler was in place
        rclpy.try_shutdown()
        return EXIT_OK
    logger = rclpy.logging.get_logger(name)
    node: Node | None = None
    code = EXIT_OK
    try:
        # The executor before the node: a Ctrl-C that shuts the context down while the node is being
        # built (a launcher stops it as soon as its services appear) must not meet a half-built executor
        # (its __del__ then prints "Exception ignored ... no attribute '_sigint_gc'" at exit).
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
        node = make_node()
        executor.add_node(node)
        gc.collect()
        gc.freeze()
        executor.spin()
    except ConfigError as e:
        logger.error(f"refusing to start: {e}")
        code = EXIT_CONFIG
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as e:
        if rclpy.ok():  # a bug, not an operator mistake: keep the traceback
            logger.fatal(f"unexpected error: {type(e).__name__}: {e}\n{traceback.format_exc()}")
            code = EXIT_ERROR
        # else: a signal shut the context down while a callback used it or the executor took a message
        # (RCLError, InvalidHandle, or a RuntimeError from the bindings): a clean end
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if callable(close):
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return code
