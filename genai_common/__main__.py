import sys

try:
    from genai_common.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command table is imported: one line, no traceback
    sys.stderr.write("genai: interrupted\n")
    sys.exit(130)

sys.exit(main())
