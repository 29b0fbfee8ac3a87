"""Orchestration of tap-callcdr's sharded runs (docs/scale.md): the Dagster job of
definitions.py and the state carried across a re-shard (shard_state.py). Not part of the tap's
wheel: it runs from the Meltano project directory, with `pip install 'tap-callcdr[orchestrate]'`."""
