// See nudge_system.h.
#define _GNU_SOURCE
#include "nudge_system.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

int nudge_rename_exchange(const char *from, const char *to) {
#if defined(__linux__) && defined(SYS_renameat2)
    // RENAME_EXCHANGE = (1 << 1) in <linux/fs.h>; spelled out so older headers build too.
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 1 << 1);
#else
    (void)from;
    (void)to;
    errno = ENOSYS;
    return -1;
#endif
}
