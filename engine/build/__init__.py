"""The builder's front half: Dockerfile parsing, variable expansion, stages, .dockerignore.

Everything here is pure (no daemon, no images): the build executor feeds it
the Dockerfile text, build args and the context directory.
"""
