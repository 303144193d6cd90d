"""`python -m bot.cli`: the same as the `mentorbot` command."""

from bot.cli import main

main()
