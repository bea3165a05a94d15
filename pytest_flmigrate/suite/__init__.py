"""The migration suite: one module per procedure step, collected when pytest gets --model."""
