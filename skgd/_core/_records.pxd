"""The sparse engine's bookkeeping of a column's record after the rule's
update of it (see _lazy.pyx for the records).

An update rule's ``step_records`` calls ``finish_record`` on each record
right after updating it: in the same loop, the engine's additions overlap
the rule's square roots and divisions. (A loop of its own after the
rule's: alternating builds on bench_sparse, adam 54-55 -> 52.5-53.5 ms,
adagrad 53.5 -> 51.4, momentum 48.8 -> 47.5; the same bits.) Three things
keep that loop tight, each measured at 55-58 ms for adam when missing:
the rule copies the struct below into a local (read through the pointer,
its fields are reloaded after every store to a record), sums into a local
array, and has a copy of the loop for K = 1 in a function of its own
(``step_records_k1``; with the loop for any K in the same function, the
compiler keeps the records' offsets on the stack).
"""


cdef struct RecordFinish:
    # The records' layout (R doubles per record: K coefficients, ...; the
    # average's sums, the averages and the stamps at these offsets), the
    # stamps to write and 1 / the number of averaged updates.
    Py_ssize_t R, K, off_sum, off_avg, off_stamp
    double log_a, t, inv_n
    bint averaged


cdef inline void finish_record(double* r, const RecordFinish* f,
                               Py_ssize_t K, Py_ssize_t c,
                               double* sums) noexcept nogil:
    """Record r, the c-th of the step (K = f.K, a constant 1 where the
    caller knows it: the compiler then drops the loops): its ||W||^2 to
    sums[0], the change of its ||avg||^2 to sums[1] (sums[2:4] for odd c:
    two chains of dependent additions at half the length), its average and
    stamps updated."""
    cdef Py_ssize_t k
    cdef double old
    cdef double* s = sums + 2 * (c & 1)
    for k in range(K):
        s[0] += r[k] * r[k]
        if f.averaged:
            r[f.off_sum + k] += r[k]
            old = r[f.off_avg + k]
            r[f.off_avg + k] = r[f.off_sum + k] * f.inv_n
            s[1] += r[f.off_avg + k] * r[f.off_avg + k] - old * old
    r[f.off_stamp] = f.log_a
    r[f.off_stamp + 1] = f.t


cdef inline void finished_sums(const double* sums,
                               double* out) noexcept nogil:
    """The finished records' ||W||^2 and change of ||avg||^2 (``sums`` of
    ``finish_record``) to out[0] and out[1]."""
    out[0] = sums[0] + sums[2]
    out[1] = sums[1] + sums[3]
