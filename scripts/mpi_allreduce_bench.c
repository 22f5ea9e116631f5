// Allreduce (sum, float32, in place) time for a given element count: the gradient exchange of
// one data-parallel step, measured with MPI itself (README "Scaling").
//   mpicc -O2 -o /tmp/allreduce scripts/mpi_allreduce_bench.c
//   mpirun -np 2 --oversubscribe /tmp/allreduce 134515008 5
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long count = argc > 1 ? atol(argv[1]) : 1 << 24;
    int repeats = argc > 2 ? atoi(argv[2]) : 5;
    float *data = malloc(sizeof(float) * (size_t)count);
    for (long i = 0; i < count; i++) data[i] = (float)(i % 7);
    MPI_Allreduce(MPI_IN_PLACE, data, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);  // warm-up
    for (int r = 0; r < repeats; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, data, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        t = MPI_Wtime() - t;
        if (rank == 0) printf("ranks %d floats %ld bytes %.0f MB: %.4f s (%.2f GB/s algorithm bandwidth)\n", size, count,
                              count * 4.0 / 1e6, t, count * 4.0 / 1e9 / t);
    }
    free(data);
    MPI_Finalize();
    return 0;
}
