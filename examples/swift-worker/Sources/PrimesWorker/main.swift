import Glibc
import PreforkWorker

// A worker that does its expensive set-up once per process (a sieve of every prime below ten million, about
// 10 MB, by default), says ready, and then answers jobs from it for as long as it lives. Payloads are commands:
//
//     is-prime N       "true" or "false"
//     nth N            the N-th prime (1-based)
//     count            how many jobs this process has answered (shows that it stays warm)
//     fail MESSAGE     fails the attempt with MESSAGE
//     crash            traps: the worker dies, the attempt is charged as a crash, a fresh worker takes over
//     sleep MS         sleeps MS milliseconds, reporting progress, then "slept"

/// Every prime below `limit`, by the sieve of Eratosthenes.
func primes(below limit: Int) -> [Int] {
    var composite = [Bool](repeating: false, count: limit)
    var found: [Int] = []
    for number in 2..<limit where !composite[number] {
        found.append(number)
        var multiple = number * number
        while multiple < limit {
            composite[multiple] = true
            multiple += number
        }
    }
    return found
}

struct PrimesHandler: JobHandler {
    let primes: [Int]
    var answered = 0

    mutating func handle(_ job: Job) throws -> JobResult {
        answered += 1
        let words = job.text.split(separator: " ", maxSplits: 1).map(String.init)
        switch (words.first, words.count > 1 ? words[1] : nil) {
        case ("is-prime", let argument?):
            guard let number = Int(argument), number >= 0, number < primes.last! else {
                throw JobFailure("is-prime needs a number below \(primes.last!)")
            }
            return JobResult(String(binarySearch(number)))
        case ("nth", let argument?):
            guard let index = Int(argument), (1...primes.count).contains(index) else {
                throw JobFailure("nth needs 1 to \(primes.count)")
            }
            return JobResult(String(primes[index - 1]))
        case ("count", nil):
            return JobResult("\(getpid()) \(answered)")
        case ("fail", let message):
            throw JobFailure(message ?? "failed on request")
        case ("crash", nil):
            fatalError("crash on request")
        case ("sleep", let argument?):
            let total = Int(argument) ?? 0
            for step in 1...10 {
                usleep(useconds_t(total * 100))
                job.progress(step * 10, "step \(step) of 10")
            }
            return "slept"
        default:
            throw JobFailure("unknown command \"\(job.text)\" (is-prime N, nth N, count, fail MESSAGE, crash, sleep MS)")
        }
    }

    private func binarySearch(_ number: Int) -> Bool {
        var low = 0
        var high = primes.count
        while low < high {
            let middle = (low + high) / 2
            if primes[middle] < number { low = middle + 1 } else { high = middle }
        }
        return low < primes.count && primes[low] == number
    }
}

// Warm-up before `ready`: the supervisor counts it against `worker.start_timeout_ms`. PRIMES_LIMIT (set with
// `program.env`) changes the table's size.
let limit = getenv("PRIMES_LIMIT").flatMap { Int(String(cString: $0)) } ?? 10_000_000
PreforkWorker.run(PrimesHandler(primes: primes(below: max(limit, 10))), version: "primes-worker 1.0")
