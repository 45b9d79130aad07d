"""The platform-agnostic core: types, hook specs, settings, pipeline, memory and LLM client."""
