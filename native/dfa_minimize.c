/* The fewest-state equivalent of a character automaton (grammar/json_schema/char_dfa.py's `minimized`):
 * Moore's refinement, each round's state signatures hashed and compared exactly, the classes numbered breadth
 * first from state 0's. In Python each round was a few numpy calls of a tenth of a millisecond, and a
 * pattern-heavy schema minimizes hundreds of automata of ten rounds or more. */
#include "char_automata.h" /* Python.h first */

#include <stdlib.h>
#include <string.h>

#include "native.h"

/* Each state's signature: its transitions with targets replaced by their classes, adjacent ranges that go
 * to one class merged; (low, high, class) triples, state s's from starts[s] to starts[s + 1]. */
typedef struct {
    int32_t *starts;
    int32_t *triples;
} Signatures;

static void signatures_fill(const Dfa *dfa, const int32_t *classes, Signatures *sig)
{
    int32_t at = 0;
    for (Py_ssize_t s = 0; s < dfa->n_states; s++) {
        sig->starts[s] = at;
        for (Py_ssize_t e = dfa->starts[s]; e < dfa->starts[s + 1]; e++) {
            int32_t cls = classes[dfa->target[e]];
            int32_t *last = at > sig->starts[s] ? &sig->triples[3 * (at - 1)] : NULL;
            if (last && last[1] == dfa->low[e] - 1 && last[2] == cls) {
                last[1] = dfa->high[e];
                continue;
            }
            sig->triples[3 * at] = dfa->low[e];
            sig->triples[3 * at + 1] = dfa->high[e];
            sig->triples[3 * at + 2] = cls;
            at++;
        }
    }
    sig->starts[dfa->n_states] = at;
}

static uint64_t signature_hash(const Signatures *sig, int32_t cls, Py_ssize_t s)
{
    uint64_t hash = 0x9E3779B97F4A7C15u ^ (uint64_t)(uint32_t)cls;
    for (int32_t i = 3 * sig->starts[s]; i < 3 * sig->starts[s + 1]; i++)
        hash = (hash ^ (uint64_t)(uint32_t)sig->triples[i]) * 0x100000001B3u;
    return hash ^ (hash >> 31);
}

static int signature_equal(const Signatures *sig, Py_ssize_t a, Py_ssize_t b)
{
    int32_t length = sig->starts[a + 1] - sig->starts[a];
    return length == sig->starts[b + 1] - sig->starts[b] &&
           memcmp(&sig->triples[3 * sig->starts[a]], &sig->triples[3 * sig->starts[b]],
                  (size_t)length * 3 * sizeof(int32_t)) == 0;
}

/* Refines `classes` to the coarsest stable partition and writes the merged automaton, numbered breadth first,
 * into out_*; returns how many states it has. Touches no Python object (it runs without the GIL); every
 * buffer is allocated by the caller. */
static int32_t refine(const Dfa *dfa, int32_t *classes, int32_t *refined, int32_t *representative, int32_t *table,
                      size_t table_size, int32_t *numbers, int32_t *order, Signatures *sig, int32_t *out_starts,
                      int32_t *out_triples, unsigned char *out_accepting)
{
    Py_ssize_t n = dfa->n_states;
    int any[2] = {0, 0};
    for (Py_ssize_t s = 0; s < n; s++) {
        classes[s] = dfa->accepting[s];
        any[dfa->accepting[s]] = 1;
    }
    int32_t count = any[0] + any[1];
    for (;;) {
        /* Two states stay together when they were together and their signatures are equal. */
        signatures_fill(dfa, classes, sig);
        memset(table, 0xff, table_size * sizeof(int32_t));
        int32_t refined_count = 0;
        for (Py_ssize_t s = 0; s < n; s++) {
            size_t slot = (size_t)signature_hash(sig, classes[s], s) & (table_size - 1);
            while (table[slot] >= 0 &&
                   !(classes[table[slot]] == classes[s] && signature_equal(sig, table[slot], s)))
                slot = (slot + 1) & (table_size - 1);
            if (table[slot] < 0) {
                table[slot] = (int32_t)s;
                representative[refined_count] = (int32_t)s;
                refined[s] = refined_count++;
            } else {
                refined[s] = refined[table[slot]];
            }
        }
        int32_t *previous = classes;
        classes = refined;
        refined = previous;
        if (refined_count == count)
            break; /* a refinement with as many classes is the same partition: stable */
        count = refined_count;
    }
    signatures_fill(dfa, classes, sig); /* over the final numbering */
    for (int32_t c = 0; c < count; c++)
        numbers[c] = -1;
    numbers[classes[0]] = 0;
    order[0] = classes[0];
    int32_t kept = 1, at = 0;
    for (int32_t k = 0; k < kept; k++) {
        int32_t s = representative[order[k]];
        out_starts[k] = at;
        out_accepting[k] = dfa->accepting[s];
        for (int32_t i = sig->starts[s]; i < sig->starts[s + 1]; i++, at++) {
            int32_t target = sig->triples[3 * i + 2];
            if (numbers[target] < 0) {
                numbers[target] = kept;
                order[kept++] = target;
            }
            out_triples[3 * at] = sig->triples[3 * i];
            out_triples[3 * at + 1] = sig->triples[3 * i + 1];
            out_triples[3 * at + 2] = numbers[target];
        }
    }
    out_starts[kept] = at;
    return kept;
}

/* dfa_minimize(transitions, accepting) -> (transitions, accepting) */
PyObject *edge_dfa_minimize(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *rows_in, *accepting_in, *result = NULL;
    if (!PyArg_ParseTuple(args, "OO", &rows_in, &accepting_in))
        return NULL;
    Dfa dfa;
    if (!dfa_read(rows_in, accepting_in, &dfa)) {
        dfa_free(&dfa);
        return NULL;
    }
    Py_ssize_t n = dfa.n_states, total = dfa.starts[n];
    if (n > MAX_STATES_LIMIT || total > INT32_MAX / 3) {
        dfa_free(&dfa);
        PyErr_SetString(PyExc_ValueError, "the automaton is too large to minimize");
        return NULL;
    }
    if (n == 0) { /* the empty language */
        dfa_free(&dfa);
        return Py_BuildValue("(()())");
    }
    size_t table_size = 2;
    while (table_size < (size_t)n * 2)
        table_size <<= 1;
    int32_t *classes = malloc(((size_t)n + 1) * sizeof(int32_t));
    int32_t *refined = malloc(((size_t)n + 1) * sizeof(int32_t));
    int32_t *representative = malloc(((size_t)n + 1) * sizeof(int32_t)); /* a class's first state */
    int32_t *table = malloc(table_size * sizeof(int32_t));                /* states by signature, -1 empty */
    int32_t *numbers = malloc(((size_t)n + 1) * sizeof(int32_t));        /* a class's number in the output */
    int32_t *order = malloc(((size_t)n + 1) * sizeof(int32_t));          /* classes in the output's order */
    int32_t *out_starts = malloc(((size_t)n + 1) * sizeof(int32_t));
    int32_t *out_triples = malloc(((size_t)total * 3 + 1) * sizeof(int32_t));
    unsigned char *out_accepting = calloc((size_t)n + 1, 1);
    Signatures sig = {malloc(((size_t)n + 1) * sizeof(int32_t)), malloc(((size_t)total * 3 + 1) * sizeof(int32_t))};
    if (!classes || !refined || !representative || !table || !numbers || !order || !out_starts || !out_triples ||
        !out_accepting || !sig.starts || !sig.triples) {
        PyErr_NoMemory();
        goto done;
    }
    int32_t kept;
    Py_BEGIN_ALLOW_THREADS
    kept = refine(&dfa, classes, refined, representative, table, table_size, numbers, order, &sig, out_starts,
                  out_triples, out_accepting);
    Py_END_ALLOW_THREADS
    result = dfa_result(kept, out_starts, out_triples, out_accepting);
done:
    free(classes);
    free(refined);
    free(representative);
    free(table);
    free(numbers);
    free(order);
    free(out_starts);
    free(out_triples);
    free(out_accepting);
    free(sig.starts);
    free(sig.triples);
    dfa_free(&dfa);
    return result;
}
