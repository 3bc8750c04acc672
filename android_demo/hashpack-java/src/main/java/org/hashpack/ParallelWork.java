package org.hashpack;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Items 0..count-1 handed out one at a time to up to {@code threads} threads (the calling thread is
 * one of them), so threads that take large items first finish together; the first failure stops
 * the hand-out and is rethrown once every thread has stopped. Why one class: decoding params
 * ({@link Model}) and materializing them ({@link Materializer}) share this loop.
 */
final class ParallelWork {
    /** What one thread does with the items it takes; made once per thread, so it may hold buffers. */
    interface Worker {
        void take(int item);
    }

    /** Makes each thread's {@link Worker}. */
    interface WorkerFactory {
        Worker newWorker();
    }

    private ParallelWork() {}

    /**
     * Runs {@code factory}'s workers over items {@code 0..count-1}, in order of hand-out, on
     * {@code min(threads, count)} threads (at least one: this one), named {@code name-N}.
     * {@code what} completes the message of an interruption ("interrupted while " + what).
     */
    static void run(int count, int threads, String name, String what, final WorkerFactory factory) {
        final AtomicInteger next = new AtomicInteger();
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        final int total = count;
        Runnable loop = () -> {
            Worker worker = factory.newWorker();
            for (int k = next.getAndIncrement(); k < total && failure.get() == null; k = next.getAndIncrement()) {
                try {
                    worker.take(k);
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            }
        };
        Thread[] pool = new Thread[Math.max(1, Math.min(threads, count)) - 1];
        for (int t = 0; t < pool.length; t++) {
            pool[t] = new Thread(loop, name + "-" + t);
            pool[t].start();
        }
        loop.run();
        for (Thread thread : pool) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while " + what, e);
            }
        }
        Throwable e = failure.get();
        if (e instanceof RuntimeException) {
            throw (RuntimeException) e;
        }
        if (e instanceof Error) {
            throw (Error) e;
        }
        if (e != null) {
            throw new IllegalStateException(e);
        }
    }
}
