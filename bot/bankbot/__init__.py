"""The reference banking assistant's Python code: escalation policy, human-queue store, custom actions and the
reference chat channel. `escalation` and `handoff_store` use only the standard library and PyYAML, so the
harness and tests can import them too."""
