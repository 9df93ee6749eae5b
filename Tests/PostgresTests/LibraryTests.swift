import Foundation
import Postgres
import Testing

/// Loading libpq at run time, and the shim's copies of libpq's constants checked against the real header.
@Suite struct LibraryTests {
    /// libpq-fe.h from libpq-dev; the constant check needs it.
    static let header = "/usr/include/postgresql/libpq-fe.h"
    static let headerPresent = FileManager.default.fileExists(atPath: header)

    /// The package root, from this file's path (Tests/PostgresTests/LibraryTests.swift).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test func loadsTheSystemLibraryAndReportsItsVersion() throws {
        let version = try PostgresLibrary.load()
        #expect(version >= 140000, "libpq \(version) lacks pipeline mode")
        #expect(try PostgresLibrary.load() == version, "a second load repeats the first")
    }

    @Test func aMissingLibraryIsNamedWithTheLoaderReasonAndTheFix() {
        #expect {
            try PostgresLibrary.probe("/nonexistent/libpq.so.5")
        } throws: { error in
            let text = String(describing: error)
            return text.hasPrefix("cannot load /nonexistent/libpq.so.5: ")
                && text.contains("No such file or directory") && text.hasSuffix("(install libpq5)")
        }
    }

    @Test func aLibraryWithoutLibpqFunctionsIsRefusedNamingTheFirstMissingOne() {
        #expect {
            try PostgresLibrary.probe("libc.so.6")
        } throws: { error in
            String(describing: error)
                == "cannot load libc.so.6: it has no PQconnectStart (libpq 14 or newer is needed; install libpq5)"
        }
    }

    @Test func theOverrideVariableIsDocumentedByName() {
        #expect(PostgresLibrary.defaultName == "libpq.so.5")
        #expect(PostgresLibrary.environmentVariable == "PREFORK_LIBPQ")
    }

    /// PREFORK_LIBPQ is read once per process, so it is checked in a child: a small C program over the shim,
    /// built with cc, run with the variable pointing nowhere and then without it.
    @Test func theEnvironmentVariableChoosesTheLibraryAndAWrongOneIsReported() throws {
        let directory = try Self.scratchDirectory("cpostgres-env")
        defer { try? FileManager.default.removeItem(at: directory) }
        let main = directory.appendingPathComponent("main.c")
        try """
        #include <stdio.h>
        #include "CPostgres.h"
        int main(void) {
            const char *error = cpq_load();
            if (error) { printf("%s", error); return 1; }
            printf("loaded %d", cpq_lib_version());
            return 0;
        }
        """.write(to: main, atomically: true, encoding: .utf8)
        let program = directory.appendingPathComponent("load").path
        let build = try Self.run(
            [
                "cc", "-std=c11", "-I", "\(Self.packageRoot)/Sources/CPostgres/include", main.path,
                "\(Self.packageRoot)/Sources/CPostgres/CPostgres.c", "-ldl", "-lpthread", "-o", program,
            ])
        try #require(build.status == 0, "cc failed: \(build.output)")

        let wrong = try Self.run([program], environment: ["PREFORK_LIBPQ": "/nonexistent/libpq.so.5"])
        #expect(wrong.status == 1)
        #expect(wrong.output.hasPrefix("cannot load /nonexistent/libpq.so.5: "), "\(wrong.output)")
        #expect(wrong.output.hasSuffix("(install libpq5, or fix PREFORK_LIBPQ)"), "\(wrong.output)")

        let unset = try Self.run([program], environment: ["PREFORK_LIBPQ": ""])
        #expect(unset.status == 0 && unset.output.hasPrefix("loaded "), "\(unset.output)")
    }

    @Test(.enabled(if: headerPresent || TestDatabase.isCI, "\(header) is missing: apt-get install libpq-dev"))
    func copiedConstantsAndNotifyLayoutMatchLibpqFeH() throws {
        guard Self.headerPresent else { throw TestFailure("\(Self.header) is missing and CI=true: install libpq-dev") }
        let directory = try Self.scratchDirectory("cpostgres-check")
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = directory.appendingPathComponent("check.c")
        try Self.checkSource.write(to: source, atomically: true, encoding: .utf8)
        let check = try Self.run(
            [
                "cc", "-std=c11", "-fsyntax-only", "-Werror", "-I", "\(Self.packageRoot)/Sources/CPostgres/include",
                "-I", "/usr/include/postgresql", source.path,
            ])
        #expect(check.status == 0, "cc rejected the shim's copies:\n\(check.output)")
    }

    /// A fresh directory under the temporary directory.
    static func scratchDirectory(_ prefix: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(prefix)-\(getpid())-\(TestDatabase.uniqueName("d"))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Runs `arguments` (looked up in PATH) with `environment` added to ours; returns its status and its
    /// stdout and stderr together.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (
        status: Int32, output: String
    ) {
        let child = Foundation.Process()
        child.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        child.arguments = arguments
        child.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let output = Pipe()
        child.standardOutput = output
        child.standardError = output
        try child.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        child.waitUntilExit()
        return (child.terminationStatus, text)
    }

    /// Every constant and the PGnotify layout that CPostgres.h copies, asserted equal to libpq's; and every
    /// function the shim resolves, named so a rename in a newer libpq fails here rather than at dlsym time.
    static let checkSource = """
        #include <stddef.h>
        #include <libpq-fe.h>
        #include "CPostgres.h"

        #define SAME(ours, theirs) _Static_assert((ours) == (theirs), #ours " != " #theirs)
        SAME(CPQ_CONNECTION_OK, CONNECTION_OK);
        SAME(CPQ_CONNECTION_BAD, CONNECTION_BAD);
        SAME(CPQ_POLLING_FAILED, PGRES_POLLING_FAILED);
        SAME(CPQ_POLLING_READING, PGRES_POLLING_READING);
        SAME(CPQ_POLLING_WRITING, PGRES_POLLING_WRITING);
        SAME(CPQ_POLLING_OK, PGRES_POLLING_OK);
        SAME(CPQ_EMPTY_QUERY, PGRES_EMPTY_QUERY);
        SAME(CPQ_COMMAND_OK, PGRES_COMMAND_OK);
        SAME(CPQ_TUPLES_OK, PGRES_TUPLES_OK);
        SAME(CPQ_COPY_OUT, PGRES_COPY_OUT);
        SAME(CPQ_COPY_IN, PGRES_COPY_IN);
        SAME(CPQ_BAD_RESPONSE, PGRES_BAD_RESPONSE);
        SAME(CPQ_NONFATAL_ERROR, PGRES_NONFATAL_ERROR);
        SAME(CPQ_FATAL_ERROR, PGRES_FATAL_ERROR);
        SAME(CPQ_COPY_BOTH, PGRES_COPY_BOTH);
        SAME(CPQ_SINGLE_TUPLE, PGRES_SINGLE_TUPLE);
        SAME(CPQ_PIPELINE_SYNC, PGRES_PIPELINE_SYNC);
        SAME(CPQ_PIPELINE_ABORTED, PGRES_PIPELINE_ABORTED);
        SAME(CPQ_PIPELINE_OFF, PQ_PIPELINE_OFF);
        SAME(CPQ_PIPELINE_ON, PQ_PIPELINE_ON);
        SAME(CPQ_PIPELINE_ABORTED_STATUS, PQ_PIPELINE_ABORTED);
        SAME(CPQ_DIAG_SEVERITY_NONLOCALIZED, PG_DIAG_SEVERITY_NONLOCALIZED);
        SAME(CPQ_DIAG_SQLSTATE, PG_DIAG_SQLSTATE);
        SAME(CPQ_DIAG_MESSAGE_PRIMARY, PG_DIAG_MESSAGE_PRIMARY);
        SAME(CPQ_DIAG_MESSAGE_DETAIL, PG_DIAG_MESSAGE_DETAIL);
        SAME(CPQ_DIAG_MESSAGE_HINT, PG_DIAG_MESSAGE_HINT);
        SAME(CPQ_DIAG_TABLE_NAME, PG_DIAG_TABLE_NAME);
        SAME(CPQ_DIAG_CONSTRAINT_NAME, PG_DIAG_CONSTRAINT_NAME);
        SAME(sizeof(cpq_oid), sizeof(Oid));
        SAME((cpq_oid)-1 > 0, (Oid)-1 > 0);
        SAME(sizeof(cpq_notify), sizeof(PGnotify));
        SAME(offsetof(cpq_notify, relname), offsetof(PGnotify, relname));
        SAME(offsetof(cpq_notify, be_pid), offsetof(PGnotify, be_pid));
        SAME(offsetof(cpq_notify, extra), offsetof(PGnotify, extra));
        SAME(offsetof(cpq_notify, next), offsetof(PGnotify, next));
        SAME(sizeof(((cpq_notify *)0)->be_pid), sizeof(((PGnotify *)0)->be_pid));

        void *resolved[] = {
            (void *)PQconnectStart, (void *)PQconnectPoll, (void *)PQstatus, (void *)PQsocket,
            (void *)PQsetnonblocking, (void *)PQflush, (void *)PQsendQueryParams, (void *)PQsendPrepare,
            (void *)PQsendQueryPrepared, (void *)PQconsumeInput, (void *)PQisBusy, (void *)PQgetResult,
            (void *)PQnotifies, (void *)PQfreemem, (void *)PQenterPipelineMode, (void *)PQexitPipelineMode,
            (void *)PQpipelineSync, (void *)PQsendFlushRequest, (void *)PQpipelineStatus, (void *)PQresultStatus,
            (void *)PQresultErrorField, (void *)PQresultErrorMessage, (void *)PQerrorMessage, (void *)PQntuples,
            (void *)PQnfields, (void *)PQfname, (void *)PQfformat, (void *)PQgetvalue, (void *)PQgetlength,
            (void *)PQgetisnull, (void *)PQcmdTuples, (void *)PQclear, (void *)PQfinish, (void *)PQlibVersion,
            (void *)PQsetNoticeProcessor,
        };
        """
}
