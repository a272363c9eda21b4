/**
 * The scheduler of record fibers.
 *
 * A call to a record is a message on its mailbox: `Server.post` wakes the
 * record's fiber through that fiber's dispatcher (as Effect's `Queue` wakes a
 * taker through the dispatcher of the fiber that created it). With
 * Effect's default scheduler each wake-up waits for a `setImmediate` turn of
 * the event loop; record fibers run on this scheduler instead, whose turns
 * are microtasks, so a call costs no event loop turn. So that timers and I/O are never starved by records calling records,
 * after {@link microtaskBudget} tasks in microtasks the next waits for a
 * `setImmediate` turn (Effect's own dispatcher), and a fiber that ran
 * Effect's 2048 operations without pause resumes after such a turn, as it
 * would with the default scheduler. (A caller and a record can serve each
 * other for long without any task: the caller resumes inside the record's
 * fiber, and its next call finds the record running.) Another scheduler in
 * the record's services (`TestClock`'s, or the application's own) is kept.
 *
 * @internal
 */
import type { Fiber } from "effect"
import { Scheduler } from "effect"

/** Tasks run in microtasks between two event loop turns. @internal */
export const microtaskBudget = 256

const microtasks = new Scheduler.MixedScheduler("sync").makeDispatcher()
const turns = new Scheduler.MixedScheduler("async").makeDispatcher()
let sinceTurn = 0

const dispatcher: Scheduler.SchedulerDispatcher = {
  scheduleTask(task, priority) {
    if (sinceTurn < microtaskBudget) {
      sinceTurn++
      microtasks.scheduleTask(task, priority)
    } else {
      turns.scheduleTask(() => {
        sinceTurn = 0
        task()
      }, priority)
    }
  },
  flush() {
    microtasks.flush()
    turns.flush()
  }
}

const microtaskScheduler: Scheduler.Scheduler = {
  executionMode: "async",
  shouldYield: (fiber: Fiber.Fiber<unknown, unknown>) => {
    if (fiber.currentOpCount < fiber.cache.maxOpsBeforeYield) return false
    // a fiber that used up its operations resumes after a turn of the event loop, as with Effect's
    // default scheduler: its yield is the next task scheduled
    sinceTurn = microtaskBudget
    return true
  },
  makeDispatcher: () => dispatcher
}

/**
 * The scheduler for record fibers whose services hold `parent`: microtask
 * turns when `parent` is Effect's default (a `MixedScheduler` in async mode);
 * `parent` itself when it is another one (`TestClock`'s, which tracks the tasks a wake-up schedules,
 * or one the application chose).
 *
 * @internal
 */
export const recordScheduler = (parent: Scheduler.Scheduler): Scheduler.Scheduler =>
  parent instanceof Scheduler.MixedScheduler && parent.executionMode === "async" ? microtaskScheduler : parent
