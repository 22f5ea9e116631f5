// System calls Swift cannot reach directly (variadic `syscall`, Linux-only flags).
#ifndef NUDGE_SYSTEM_H
#define NUDGE_SYSTEM_H

/// Atomically exchanges the two paths (Linux renameat2 with RENAME_EXCHANGE). Returns 0, or -1
/// with errno set (ENOSYS or EINVAL where the kernel or file system cannot, and on other systems).
int nudge_rename_exchange(const char *from, const char *to);

#endif
