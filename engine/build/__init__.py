"""The builder's front half: Dockerfile parsing, variable expansion, stages, .dockerignore.

Everything here is pure (no daemon, no images): the build executor feeds it
the Dockerfile text, build args and the context directory.

  dockerfile_parser.parse(text) -> Dockerfile      directives + instruction dataclasses (instructions.py)
  stages.resolve(dockerfile, build_args, target)   -> BuildPlan: stages, substituted, the ones the target needs
  stages.StageScope                                 ARG/ENV scope to replay a stage with a real base image ENV
  expand.process_word / process_words              Docker's shell-lexer substitution ($VAR, ${VAR:-x}...)
  dockerignore.ContextFilter                       .dockerignore: excluded(path), walk(root)

Module map: logical_lines (physical → logical lines), directives (# syntax/escape/check),
heredoc (<<EOF detection), words (argument splitting), flags (--name=value),
run_mounts (RUN --mount), go_duration (HEALTHCHECK intervals), build_args
(predefined proxy and platform args), errors.
"""
