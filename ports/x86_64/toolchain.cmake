# x86_64 Linux (glibc): the host compiler under its triplet name, so the
# x86_64 port builds with one command like the others, from any host.
set(CMAKE_C_COMPILER   x86_64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER x86_64-linux-gnu-g++)
set(CMAKE_STRIP        x86_64-linux-gnu-strip CACHE FILEPATH "")
