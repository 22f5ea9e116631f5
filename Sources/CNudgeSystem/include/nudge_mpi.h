// MPI opened at run time (dlopen), behind one interface whatever the implementation: Open MPI
// (libmpi.so.40) or an MPICH-ABI library (MPICH, Intel MPI: libmpi.so.12, libmpich.so.12). Every
// call works on MPI_COMM_WORLD. Returns are MPI's (0: success) unless said otherwise.
#ifndef NUDGE_MPI_H
#define NUDGE_MPI_H

/// Opens the first of `paths` that loads and is an MPI library. Returns 1 (Open MPI), 2 (MPICH
/// ABI), or -1 with `nudge_mpi_error()` saying why.
int nudge_mpi_open(const char *const *paths, int count);
/// Why the last open failed (empty when it did not).
const char *nudge_mpi_error(void);
/// The path opened (empty when none).
const char *nudge_mpi_path(void);
/// 0 (none opened), 1 (Open MPI), 2 (MPICH ABI).
int nudge_mpi_implementation(void);
/// MPI_Get_library_version's text, copied into `buffer`.
int nudge_mpi_library_version(char *buffer, int capacity);
/// MPI_Init_thread(MPI_THREAD_SERIALIZED), once.
int nudge_mpi_init(void);
/// MPI_Finalize, if initialized and not yet finalized.
int nudge_mpi_finalize(void);
int nudge_mpi_rank(int *rank);
int nudge_mpi_size(int *size);
/// In-place sums and maxima over every rank.
int nudge_mpi_allreduce_sum_float(float *data, int count);
int nudge_mpi_allreduce_sum_double(double *data, int count);
int nudge_mpi_allreduce_max_double(double *data, int count);
/// `bytes` bytes from `root` to every rank.
int nudge_mpi_broadcast(void *data, int bytes, int root);
int nudge_mpi_barrier(void);
/// MPI_Abort on MPI_COMM_WORLD (every rank ends), then _exit.
void nudge_mpi_abort(int code);
/// For atexit: MPI_Abort when MPI was started and not finalized (a rank leaving after an error
/// takes the job down instead of leaving the others waiting in a collective).
void nudge_mpi_exit_handler(void);

#endif
