# x86_64 Linux (glibc): the host compiler under its triplet name, so the
# x86_64 port builds with one command like the others, from any host.
set(CMAKE_C_COMPILER   x86_64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER x86_64-linux-gnu-g++)
set(CMAKE_STRIP        x86_64-linux-gnu-strip CACHE FILEPATH "")
# Like the device ports: link-time optimisation of the two programs
# (cmake/Toolchain.cmake, TG_LTO); the unwind tables stay.
set(TG_LTO ON CACHE BOOL "Link the two programs with link-time optimisation")
