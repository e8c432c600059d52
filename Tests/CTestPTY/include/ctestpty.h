#ifndef CTESTPTY_H
#define CTESTPTY_H

/// Opens a pseudo-terminal pair for a test that drives a program as a person at a terminal would.
/// Glibc's Swift module hides posix_openpt/grantpt/unlockpt/ptsname (they sit behind _XOPEN_SOURCE),
/// so the test reaches them through this shim. Returns 0 and both descriptors, or -1 with errno set.
int ctestpty_open(int *master, int *slave);

#endif
