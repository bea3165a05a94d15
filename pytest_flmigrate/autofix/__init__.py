"""Automatic fixes step 4 applies: relocations, backports, config bridges, and their planner."""
