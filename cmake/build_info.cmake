# Writes build_info.h at BUILD time (not only at configure time), so the commit a binary reports is the
# commit it was built from. "+dirty" marks a build from a tree with uncommitted changes to tracked files.
# configure_file leaves the header untouched when nothing changed, so an unchanged tree recompiles nothing.
execute_process(COMMAND git rev-parse --short=12 HEAD WORKING_DIRECTORY "${QB_SOURCE_DIR}"
                OUTPUT_VARIABLE QB_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT QB_GIT_COMMIT)
  set(QB_GIT_COMMIT "unknown (not built from a git checkout)")
else()
  execute_process(COMMAND git status --porcelain --untracked-files=no WORKING_DIRECTORY "${QB_SOURCE_DIR}"
                  OUTPUT_VARIABLE QB_GIT_DIRTY OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(QB_GIT_DIRTY)
    set(QB_GIT_COMMIT "${QB_GIT_COMMIT}+dirty")
  endif()
endif()
configure_file("${QB_BUILD_INFO_IN}" "${QB_BUILD_INFO_OUT}" @ONLY)
