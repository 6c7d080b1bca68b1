# Runs one interop node script; fails (never skips) when its tools are missing.
# Variables: NODE (node executable or NOTFOUND), SCRIPT, PEER, MODULES.
if(NOT NODE OR NODE MATCHES "NOTFOUND$")
  message(FATAL_ERROR "node not found: run scripts/setup (installs node and the interop npm packages)")
endif()
if(NOT EXISTS "${MODULES}")
  message(FATAL_ERROR "${MODULES} is missing: run scripts/setup (runs npm ci in tests/interop)")
endif()
execute_process(COMMAND "${NODE}" "${SCRIPT}" "${PEER}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${SCRIPT} failed (exit ${rc})")
endif()
