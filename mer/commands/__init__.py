"""The `mer` command's verbs (`mer/commands/cli.py` registers them), one module each with `add_arguments(parser)`
and `run(args) -> int`. A verb parses its arguments, calls the library and prints; its heavy imports (torch,
cv2, hydra, ray) stay inside `run`, so `mer --help` imports none of them, and the library modules it calls
import at their top."""
