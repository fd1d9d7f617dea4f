#!/usr/bin/env python
"""Django's command-line utility for the recyclables market."""

import os
import sys

# Commands that only write source files (migrations, the message catalogue) sign nothing and serve
# nobody: without a SECRET_KEY they run in development mode instead of refusing to start.
SOURCE_ONLY_COMMANDS = {"makemigrations", "makemessages"}


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "market.settings")
    if sys.argv[1:2] and sys.argv[1] in SOURCE_ONLY_COMMANDS and not os.environ.get("SECRET_KEY"):
        os.environ.setdefault("DEBUG", "1")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
