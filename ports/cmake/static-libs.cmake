# Included right after project() by the static toolchains
# (CMAKE_PROJECT_INCLUDE): the platform files have set the library suffixes
# by then, so this is the place to make find_library and pkg-config take
# static archives only.
set(CMAKE_FIND_LIBRARY_SUFFIXES .a)
set(PKG_CONFIG_ARGN --static)
