import sys

from genai_common.cli import main

sys.exit(main())
