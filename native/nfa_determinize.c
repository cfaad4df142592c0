/* Subset construction for a pattern's automaton (grammar/json_schema/char_dfa.py's `_determinize`): the
 * Thompson NFA's states reached together become one state of a character DFA. The same states in the same
 * order as the Python it replaces (its whole compile, for a schema of a few long patterns). */
#include "char_automata.h" /* Python.h first */

#include <stdlib.h>
#include <string.h>

#include "native.h"

typedef struct {
    int32_t *items;
    Py_ssize_t count, room;
} Ints;

static int ints_push(Ints *list, int32_t value)
{
    if (list->count == list->room) {
        Py_ssize_t room = list->room ? list->room * 2 : 256;
        int32_t *grown = realloc(list->items, (size_t)room * sizeof *grown);
        if (!grown)
            return 0;
        list->items = grown;
        list->room = room;
    }
    list->items[list->count++] = value;
    return 1;
}

static int compare_ints(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* An edge's start or end: `point` is low (step +1) or high + 1 (step -1). */
typedef struct {
    int32_t point, target, step;
} Event;

static int compare_events(const void *a, const void *b)
{
    const Event *x = a, *y = b;
    return (x->point > y->point) - (x->point < y->point);
}

typedef struct {
    Py_ssize_t n;
    Ints edge_starts, edges; /* (low, high, target) triples per state */
    Ints epsilon_starts, epsilon;
} Nfa;

/* edges: a list per state of (ranges, target), ranges a sequence of (low, high); epsilon: a list per state of
 * targets. 0 with a Python error set when malformed. */
static int nfa_read(PyObject *edges, PyObject *epsilon, Nfa *nfa)
{
    if (!PyList_Check(edges) || !PyList_Check(epsilon) || PyList_GET_SIZE(edges) != PyList_GET_SIZE(epsilon)) {
        PyErr_SetString(PyExc_TypeError, "edges and epsilon must be lists, one item per state");
        return 0;
    }
    nfa->n = PyList_GET_SIZE(edges);
    for (Py_ssize_t s = 0; s < nfa->n; s++) {
        if (!ints_push(&nfa->edge_starts, (int32_t)(nfa->edges.count / 3)) ||
            !ints_push(&nfa->epsilon_starts, (int32_t)nfa->epsilon.count))
            return PyErr_NoMemory() != NULL;
        PyObject *own = PyList_GET_ITEM(edges, s), *empty = PyList_GET_ITEM(epsilon, s);
        if (!PyList_Check(own) || !PyList_Check(empty)) {
            PyErr_SetString(PyExc_TypeError, "each state's edges and epsilon edges must be lists");
            return 0;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(own); i++) {
            int32_t target;
            PyObject *ranges;
            PyObject *edge = PyList_GET_ITEM(own, i);
            if (!PyArg_ParseTuple(edge, "Oi", &ranges, &target))
                return 0;
            if (target < 0 || target >= nfa->n) {
                PyErr_SetString(PyExc_ValueError, "an edge's target is not a state");
                return 0;
            }
            PyObject *fast = PySequence_Fast(ranges, "an edge's ranges must be a sequence");
            if (!fast)
                return 0;
            for (Py_ssize_t r = 0; r < PySequence_Fast_GET_SIZE(fast); r++) {
                int32_t low, high;
                if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, r), "ii", &low, &high)) {
                    Py_DECREF(fast);
                    return 0;
                }
                if (low < 0 || high > MAX_CODE_POINT || low > high) {
                    Py_DECREF(fast);
                    PyErr_SetString(PyExc_ValueError, "a range is not a range of code points");
                    return 0;
                }
                if (!ints_push(&nfa->edges, low) || !ints_push(&nfa->edges, high) || !ints_push(&nfa->edges, target)) {
                    Py_DECREF(fast);
                    return PyErr_NoMemory() != NULL;
                }
            }
            Py_DECREF(fast);
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(empty); i++) {
            long target = PyLong_AsLong(PyList_GET_ITEM(empty, i));
            if (target == -1 && PyErr_Occurred())
                return 0;
            if (target < 0 || target >= nfa->n) {
                PyErr_SetString(PyExc_ValueError, "an epsilon edge's target is not a state");
                return 0;
            }
            if (!ints_push(&nfa->epsilon, (int32_t)target))
                return PyErr_NoMemory() != NULL;
        }
    }
    if (!ints_push(&nfa->edge_starts, (int32_t)(nfa->edges.count / 3)) ||
        !ints_push(&nfa->epsilon_starts, (int32_t)nfa->epsilon.count))
        return PyErr_NoMemory() != NULL;
    return 1;
}

/* The sets of NFA states (sorted) that are DFA states, numbered in order, found by hash. */
typedef struct {
    Ints starts, members;
    int32_t *table; /* state numbers by hash, -1 empty */
    size_t mask;
} StateSets;

static uint64_t set_hash(const int32_t *items, Py_ssize_t count)
{
    uint64_t hash = 0x9E3779B97F4A7C15u;
    for (Py_ssize_t i = 0; i < count; i++)
        hash = (hash ^ (uint64_t)(uint32_t)items[i]) * 0x100000001B3u;
    return hash ^ (hash >> 31);
}

/* The number of the set `items` (sorted), added when new; -1 when new and `max_states` are numbered
 * already; -2 out of memory. */
static int32_t state_number(StateSets *sets, const int32_t *items, Py_ssize_t count, int32_t max_states)
{
    size_t slot = (size_t)set_hash(items, count) & sets->mask;
    for (;; slot = (slot + 1) & sets->mask) {
        int32_t number = sets->table[slot];
        if (number < 0)
            break;
        int32_t start = sets->starts.items[number], length = sets->starts.items[number + 1] - start;
        if (length == count && memcmp(&sets->members.items[start], items, (size_t)count * sizeof *items) == 0)
            return number;
    }
    int32_t number = (int32_t)sets->starts.count - 1;
    if (number >= max_states)
        return -1;
    for (Py_ssize_t i = 0; i < count; i++)
        if (!ints_push(&sets->members, items[i]))
            return -2;
    if (!ints_push(&sets->starts, (int32_t)sets->members.count))
        return -2;
    sets->table[slot] = number;
    return number;
}

/* The epsilon closure of the states `from` (any order, repeats allowed) into `out`, sorted. */
static int closure(const Nfa *nfa, const int32_t *from, Py_ssize_t count, int32_t *stamp, int32_t mark, Ints *stack,
                   Ints *out)
{
    out->count = stack->count = 0;
    for (Py_ssize_t i = 0; i < count; i++)
        if (stamp[from[i]] != mark) {
            stamp[from[i]] = mark;
            if (!ints_push(stack, from[i]))
                return 0;
        }
    while (stack->count) {
        int32_t state = stack->items[--stack->count];
        if (!ints_push(out, state))
            return 0;
        for (int32_t e = nfa->epsilon_starts.items[state]; e < nfa->epsilon_starts.items[state + 1]; e++) {
            int32_t target = nfa->epsilon.items[e];
            if (stamp[target] != mark) {
                stamp[target] = mark;
                if (!ints_push(stack, target))
                    return 0;
            }
        }
    }
    qsort(out->items, (size_t)out->count, sizeof *out->items, compare_ints);
    return 1;
}

/* nfa_determinize(edges, epsilon, start, end, max_states) -> (transitions, accepting) | None */
PyObject *edge_nfa_determinize(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *edges, *epsilon, *result = NULL;
    int32_t start, end, max_states;
    if (!PyArg_ParseTuple(args, "OOiii", &edges, &epsilon, &start, &end, &max_states))
        return NULL;
    Nfa nfa = {0};
    StateSets sets = {0};
    Ints stack = {0}, found = {0}, targets = {0}, rows = {0}, row_starts = {0};
    Event *events = NULL;
    int32_t *stamp = NULL, *open = NULL;
    unsigned char *accepting = NULL, *listed = NULL; /* listed: in `active` */
    if (!nfa_read(edges, epsilon, &nfa))
        goto done;
    if (start < 0 || start >= nfa.n || end < 0 || end >= nfa.n || max_states < 1 || max_states > MAX_STATES_LIMIT) {
        PyErr_SetString(PyExc_ValueError, "start and end must be states and max_states positive");
        goto done;
    }
    size_t table_size = 2;
    while (table_size < (size_t)max_states * 2)
        table_size <<= 1;
    sets.table = malloc(table_size * sizeof(int32_t));
    sets.mask = table_size - 1;
    stamp = calloc((size_t)nfa.n, sizeof(int32_t));
    open = calloc((size_t)nfa.n, sizeof(int32_t)); /* ranges open per target during a sweep */
    listed = calloc((size_t)nfa.n, 1);
    events = malloc(((size_t)nfa.edges.count / 3 * 2 + 1) * sizeof *events);
    if (!sets.table || !stamp || !open || !listed || !events || !ints_push(&sets.starts, 0)) {
        PyErr_NoMemory();
        goto done;
    }
    memset(sets.table, 0xff, table_size * sizeof(int32_t));
    int32_t mark = 1;
    if (!closure(&nfa, &start, 1, stamp, mark++, &stack, &found) ||
        state_number(&sets, found.items, found.count, max_states) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    int too_big = 0;
    for (int32_t state = 0; state < (int32_t)sets.starts.count - 1 && !too_big; state++) {
        if (!ints_push(&row_starts, (int32_t)(rows.count / 3)))
            goto no_memory;
        /* Every edge of every member, cut at each range end: one sweep over the sorted ends. */
        Py_ssize_t n_events = 0;
        for (int32_t m = sets.starts.items[state]; m < sets.starts.items[state + 1]; m++) {
            int32_t member = sets.members.items[m];
            for (int32_t e = nfa.edge_starts.items[member]; e < nfa.edge_starts.items[member + 1]; e++) {
                const int32_t *edge = &nfa.edges.items[3 * e];
                events[n_events++] = (Event){edge[0], edge[2], 1};
                events[n_events++] = (Event){edge[1] + 1, edge[2], -1};
            }
        }
        qsort(events, (size_t)n_events, sizeof *events, compare_events);
        Py_ssize_t row_first = rows.count / 3, previous_targets = -1;
        targets.count = 0; /* this row's target sets, one after another */
        int32_t previous_count = 0;
        Ints active = {0}; /* the targets open now, unsorted, each once */
        for (Py_ssize_t i = 0; i < n_events;) {
            int32_t low = events[i].point;
            for (; i < n_events && events[i].point == low; i++) {
                int32_t target = events[i].target;
                open[target] += events[i].step;
                if (open[target] > 0 && !listed[target]) {
                    listed[target] = 1;
                    if (!ints_push(&active, target)) {
                        free(active.items);
                        goto no_memory;
                    }
                }
            }
            Py_ssize_t kept = 0; /* drop the closed ones */
            for (Py_ssize_t a = 0; a < active.count; a++) {
                if (open[active.items[a]] > 0)
                    active.items[kept++] = active.items[a];
                else
                    listed[active.items[a]] = 0;
            }
            active.count = kept;
            if (i == n_events || !active.count)
                continue;
            int32_t high = events[i].point - 1;
            Py_ssize_t targets_at = targets.count;
            for (Py_ssize_t a = 0; a < active.count; a++)
                if (!ints_push(&targets, active.items[a])) {
                    free(active.items);
                    goto no_memory;
                }
            qsort(&targets.items[targets_at], (size_t)active.count, sizeof(int32_t), compare_ints);
            /* Adjacent intervals with the same targets are one transition. */
            Py_ssize_t last = rows.count / 3 - 1;
            if (last >= row_first && rows.items[3 * last + 1] == low - 1 && previous_count == active.count &&
                memcmp(&targets.items[previous_targets], &targets.items[targets_at],
                       (size_t)active.count * sizeof(int32_t)) == 0) {
                rows.items[3 * last + 1] = high;
                targets.count = targets_at;
                continue;
            }
            previous_targets = targets_at;
            previous_count = (int32_t)active.count;
            if (!closure(&nfa, &targets.items[targets_at], active.count, stamp, mark++, &stack, &found)) {
                free(active.items);
                goto no_memory;
            }
            int32_t number = state_number(&sets, found.items, found.count, max_states);
            if (number == -2) {
                free(active.items);
                goto no_memory;
            }
            if (number == -1) {
                too_big = 1;
                break;
            }
            if (!ints_push(&rows, low) || !ints_push(&rows, high) || !ints_push(&rows, number)) {
                free(active.items);
                goto no_memory;
            }
        }
        for (Py_ssize_t a = 0; a < active.count; a++)
            open[active.items[a]] = listed[active.items[a]] = 0;
        free(active.items);
    }
    if (too_big) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    int32_t n = (int32_t)sets.starts.count - 1;
    if (!ints_push(&row_starts, (int32_t)(rows.count / 3)))
        goto no_memory;
    accepting = calloc((size_t)n + 1, 1);
    if (!accepting)
        goto no_memory;
    for (int32_t s = 0; s < n; s++)
        for (int32_t m = sets.starts.items[s]; m < sets.starts.items[s + 1]; m++)
            accepting[s] |= sets.members.items[m] == end;
    result = dfa_result(n, row_starts.items, rows.items, accepting);
    goto done;
no_memory:
    PyErr_NoMemory();
done:
    free(nfa.edge_starts.items);
    free(nfa.edges.items);
    free(nfa.epsilon_starts.items);
    free(nfa.epsilon.items);
    free(sets.starts.items);
    free(sets.members.items);
    free(sets.table);
    free(stack.items);
    free(found.items);
    free(targets.items);
    free(rows.items);
    free(row_starts.items);
    free(events);
    free(stamp);
    free(open);
    free(accepting);
    free(listed);
    return result;
}
