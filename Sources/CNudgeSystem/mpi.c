// See nudge_mpi.h. MPI is opened with dlopen, never linked, so building Nudge needs no MPI
// package. The two ABIs in use differ in what a handle is: Open MPI's MPI_Comm, MPI_Datatype and
// MPI_Op are pointers to exported globals (MPI_COMM_WORLD is &ompi_mpi_comm_world), MPICH's (and
// Intel MPI's, which shares its ABI) are int constants. The values below are copied from the
// installed headers (Open MPI 4.1 /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h, MPICH 4.0
// /usr/include/x86_64-linux-gnu/mpich/mpi.h); the MPICH ABI has kept them since MPICH 3.1.
#define _GNU_SOURCE
#include "nudge_mpi.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { IMPL_NONE = 0, IMPL_OPENMPI = 1, IMPL_MPICH = 2 };

// Open MPI: handles are pointers.
typedef void *ompi_handle;
// MPICH: handles are ints.
typedef int mpich_handle;

#define MPICH_COMM_WORLD 0x44000000
#define MPICH_FLOAT 0x4c00040a
#define MPICH_DOUBLE 0x4c00080b
#define MPICH_BYTE 0x4c00010d
#define MPICH_SUM 0x58000003
#define MPICH_MAX 0x58000001
#define MPI_THREAD_SERIALIZED_VALUE 2 // the same in both ABIs

static struct {
    int impl;
    void *lib;
    char path[512];
    // Open MPI's predefined objects.
    void *comm_world, *dt_float, *dt_double, *dt_byte, *op_sum, *op_max;
    int (*init_thread)(int *, char ***, int, int *);
    int (*initialized)(int *);
    int (*finalized)(int *);
    int (*finalize)(void);
    int (*library_version)(char *, int *);
    // The calls taking handles, one pointer per ABI.
    union { int (*o)(ompi_handle, int *); int (*m)(mpich_handle, int *); } comm_rank, comm_size;
    union { int (*o)(const void *, void *, int, ompi_handle, ompi_handle, ompi_handle);
            int (*m)(const void *, void *, int, mpich_handle, mpich_handle, mpich_handle); } allreduce;
    union { int (*o)(void *, int, ompi_handle, int, ompi_handle); int (*m)(void *, int, mpich_handle, int, mpich_handle); } bcast;
    union { int (*o)(ompi_handle); int (*m)(mpich_handle); } barrier;
    union { int (*o)(ompi_handle, int); int (*m)(mpich_handle, int); } abort_;
    char error[1024];
} mpi;

static void *sym(const char *name) {
    void *p = dlsym(mpi.lib, name);
    if (!p && mpi.error[0] == 0) snprintf(mpi.error, sizeof mpi.error, "%s has no symbol %s", mpi.path, name);
    return p;
}

int nudge_mpi_open(const char *const *paths, int count) {
    if (mpi.impl != IMPL_NONE) return mpi.impl;
    char tried[768] = {0};
    for (int i = 0; i < count; i++) {
        // RTLD_GLOBAL: Open MPI's plugins (mca_*.so) resolve libmpi's symbols from the global scope.
        void *lib = dlopen(paths[i], RTLD_NOW | RTLD_GLOBAL);
        if (!lib) {
            size_t used = strlen(tried);
            snprintf(tried + used, sizeof tried - used, "%s%s", used ? ", " : "", paths[i]);
            continue;
        }
        mpi.lib = lib;
        snprintf(mpi.path, sizeof mpi.path, "%s", paths[i]);
        mpi.error[0] = 0;
        if (dlsym(lib, "ompi_mpi_comm_world")) {
            mpi.impl = IMPL_OPENMPI;
            mpi.comm_world = sym("ompi_mpi_comm_world");
            mpi.dt_float = sym("ompi_mpi_float");
            mpi.dt_double = sym("ompi_mpi_double");
            mpi.dt_byte = sym("ompi_mpi_byte");
            mpi.op_sum = sym("ompi_mpi_op_sum");
            mpi.op_max = sym("ompi_mpi_op_max");
        } else if (dlsym(lib, "MPI_Init")) {
            mpi.impl = IMPL_MPICH;
        } else {
            snprintf(mpi.error, sizeof mpi.error, "%s is neither Open MPI nor an MPICH-ABI library", paths[i]);
            dlclose(lib);
            mpi.lib = NULL;
            continue;
        }
        mpi.init_thread = (int (*)(int *, char ***, int, int *))sym("MPI_Init_thread");
        mpi.initialized = (int (*)(int *))sym("MPI_Initialized");
        mpi.finalized = (int (*)(int *))sym("MPI_Finalized");
        mpi.finalize = (int (*)(void))sym("MPI_Finalize");
        mpi.library_version = (int (*)(char *, int *))sym("MPI_Get_library_version");
        *(void **)&mpi.comm_rank = sym("MPI_Comm_rank");
        *(void **)&mpi.comm_size = sym("MPI_Comm_size");
        *(void **)&mpi.allreduce = sym("MPI_Allreduce");
        *(void **)&mpi.bcast = sym("MPI_Bcast");
        *(void **)&mpi.barrier = sym("MPI_Barrier");
        *(void **)&mpi.abort_ = sym("MPI_Abort");
        if (mpi.error[0]) {
            mpi.impl = IMPL_NONE;
            dlclose(lib);
            mpi.lib = NULL;
            return -1;
        }
        return mpi.impl;
    }
    if (mpi.error[0] == 0) snprintf(mpi.error, sizeof mpi.error, "no MPI library found (tried %s)", tried);
    return -1;
}

const char *nudge_mpi_error(void) { return mpi.error; }
const char *nudge_mpi_path(void) { return mpi.path; }
int nudge_mpi_implementation(void) { return mpi.impl; }

int nudge_mpi_library_version(char *buffer, int capacity) {
    if (mpi.impl == IMPL_NONE || capacity <= 0) return -1;
    // MPI_MAX_LIBRARY_VERSION_STRING: 256 in Open MPI, 8192 in MPICH.
    static char text[8192];
    int length = 0;
    if (mpi.library_version(text, &length) != 0) return -1;
    if (length >= (int)sizeof text) length = sizeof text - 1;
    text[length] = 0;
    snprintf(buffer, (size_t)capacity, "%s", text);
    return 0;
}

int nudge_mpi_init(void) {
    if (mpi.impl == IMPL_NONE) return -1;
    int done = 0;
    mpi.initialized(&done);
    if (done) return 0;
    int provided = 0;
    return mpi.init_thread(NULL, NULL, MPI_THREAD_SERIALIZED_VALUE, &provided);
}

int nudge_mpi_finalize(void) {
    if (mpi.impl == IMPL_NONE) return 0;
    int started = 0, ended = 0;
    mpi.initialized(&started);
    mpi.finalized(&ended);
    return started && !ended ? mpi.finalize() : 0;
}

int nudge_mpi_rank(int *rank) {
    return mpi.impl == IMPL_OPENMPI ? mpi.comm_rank.o(mpi.comm_world, rank) : mpi.comm_rank.m(MPICH_COMM_WORLD, rank);
}

int nudge_mpi_size(int *size) {
    return mpi.impl == IMPL_OPENMPI ? mpi.comm_size.o(mpi.comm_world, size) : mpi.comm_size.m(MPICH_COMM_WORLD, size);
}

static int allreduce(void *data, int count, void *odt, int mdt, void *oop, int mop) {
    // MPI_IN_PLACE: (void *)1 in Open MPI, (void *)-1 in MPICH.
    if (mpi.impl == IMPL_OPENMPI) return mpi.allreduce.o((void *)1, data, count, odt, oop, mpi.comm_world);
    return mpi.allreduce.m((void *)-1, data, count, mdt, mop, MPICH_COMM_WORLD);
}

int nudge_mpi_allreduce_sum_float(float *data, int count) {
    return allreduce(data, count, mpi.dt_float, MPICH_FLOAT, mpi.op_sum, MPICH_SUM);
}

int nudge_mpi_allreduce_sum_double(double *data, int count) {
    return allreduce(data, count, mpi.dt_double, MPICH_DOUBLE, mpi.op_sum, MPICH_SUM);
}

int nudge_mpi_allreduce_max_double(double *data, int count) {
    return allreduce(data, count, mpi.dt_double, MPICH_DOUBLE, mpi.op_max, MPICH_MAX);
}

int nudge_mpi_broadcast(void *data, int bytes, int root) {
    if (mpi.impl == IMPL_OPENMPI) return mpi.bcast.o(data, bytes, mpi.dt_byte, root, mpi.comm_world);
    return mpi.bcast.m(data, bytes, MPICH_BYTE, root, MPICH_COMM_WORLD);
}

int nudge_mpi_barrier(void) {
    return mpi.impl == IMPL_OPENMPI ? mpi.barrier.o(mpi.comm_world) : mpi.barrier.m(MPICH_COMM_WORLD);
}

void nudge_mpi_abort(int code) {
    if (mpi.impl == IMPL_OPENMPI) mpi.abort_.o(mpi.comm_world, code);
    else if (mpi.impl == IMPL_MPICH) mpi.abort_.m(MPICH_COMM_WORLD, code);
    _exit(code);
}

void nudge_mpi_exit_handler(void) {
    if (mpi.impl == IMPL_NONE) return;
    int started = 0, ended = 0;
    mpi.initialized(&started);
    mpi.finalized(&ended);
    if (started && !ended) {
        int rank = -1;
        nudge_mpi_rank(&rank);
        fprintf(stderr, "rank %d: exiting without finishing the MPI job; aborting every rank\n", rank);
        nudge_mpi_abort(1);
    }
}
