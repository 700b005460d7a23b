/**
 * A libtorrent client for the interop tests and the benchmark's anchor stage: a small Python program
 * for Debian's python3-libtorrent, run as
 * '/usr/bin/python3 -c LIBTORRENT_DRIVER --torrent T --save D [--port P] [--connect H:P]... [--seed]'.
 * It lives in a TypeScript string so that nothing but `.ts` files is needed to run it, and under
 * bench/ because the bench may not import from test/ (the tests import it from here).
 */
import { spawnSync } from 'node:child_process';

/** Debian's python3-libtorrent is importable only from the system interpreter. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export type LibtorrentProbe =
  | { readonly ok: true; readonly version: string }
  | { readonly ok: false; readonly reason: string };

/** Whether `/usr/bin/python3 -c 'import libtorrent'` works, with its version or why not. */
export function probeLibtorrent(): LibtorrentProbe {
  const probe = spawnSync(SYSTEM_PYTHON, ['-c', 'import libtorrent; print(libtorrent.__version__)'], {
    encoding: 'utf8',
  });
  const output = `${probe.stdout ?? ''}${probe.stderr ?? ''}`.trim();
  if (probe.error !== undefined || probe.status !== 0) {
    const lines = output.split('\n');
    return { ok: false, reason: probe.error?.message ?? lines[lines.length - 1] ?? 'failed' };
  }
  return { ok: true, version: output.split('\n')[0] ?? '' };
}

export const LIBTORRENT_DRIVER = String.raw`"""A libtorrent (python3-libtorrent, Debian) client for swarm's interop tests and bench, on 127.0.0.1 only.

Downloads or seeds one torrent and prints one JSON object per line on stdout:
  {"event": "listening", "port": P}                 the session listens (TCP, loopback only)
  {"event": "torrent", "path": T}                   --make-torrent wrote a v1 torrent
  {"event": "status", "progress": .., "peers": ..}  once a second
  {"event": "complete", "uploaded": ..}             every piece downloaded and hash-checked
  {"event": "seeding"}                              --seed: the data was checked and is served
  {"event": "met", "address": A, ...}               --pex: a peer connected (handshake done), once
  {"event": "alert", "message": ...}                peer and tracker errors, for diagnosis
It exits by itself after --max-seconds (exit code 3 if the download did not finish), so a test
that forgets it cannot leave it running for ever.

DHT, local service discovery, UPnP, NAT-PMP, PEX and uTP are off; only TCP to the addresses given
with --connect (and whatever the torrent's tracker returns). --pex turns peer exchange (ut_pex) on,
and every peer the session completes a handshake with is reported once per address and direction,
however briefly it stays ("met": address, peer id, whether we dialled it, and how we learned the
address: "source" is peer_info.source, "pex" whether it has the ut_pex bit), the connections being
looked at every 50 ms; --upload-limit caps the upload in bytes per second, to peers on the local
network (loopback included) too, which libtorrent otherwise leaves unlimited. Until it is connected to as many peers
as --connect names, it dials the ones it has no outgoing connection to once a second, so peers
started together find each other whichever listens first.
"""

import argparse
import json
import os
import sys
import time

import libtorrent as lt


def emit(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def host_port(text):
    host, _, port = text.rpartition(":")
    return (host or "127.0.0.1", int(port))


def make_torrent(data_path, piece_size, out_path, announce):
    files = lt.file_storage()
    lt.add_files(files, data_path)
    creator = lt.create_torrent(files, piece_size, flags=lt.create_torrent.v1_only)
    if announce:
        creator.add_tracker(announce)
    lt.set_piece_hashes(creator, os.path.dirname(os.path.abspath(data_path)))
    with open(out_path, "wb") as out:
        out.write(lt.bencode(creator.generate()))
    emit(event="torrent", path=out_path, pieces=creator.num_pieces())


def report_met(handle, met):
    """Emits a "met" line for each connected peer not reported yet (by address and direction)."""
    for info in handle.get_peer_info():
        if info.flags & (info.connecting | info.handshake):
            continue
        address = "%s:%d" % (info.ip[0], info.ip[1])
        outgoing = bool(info.flags & info.local_connection)
        if (address, outgoing) in met:
            continue
        met.add((address, outgoing))
        emit(
            event="met",
            address=address,
            id=info.pid.to_bytes().decode("latin-1"),
            outgoing=outgoing,
            source=int(info.source),
            pex=bool(info.source & lt.peer_info.pex),
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--torrent", help="the .torrent file")
    parser.add_argument("--magnet", help="or only a magnet link: the metadata comes from peers (BEP 9)")
    parser.add_argument("--save", required=True, help="folder holding (or receiving) the file")
    parser.add_argument("--port", type=int, default=0, help="TCP port to listen on (0: any free port)")
    parser.add_argument("--connect", action="append", default=[], help="HOST:PORT to dial (repeatable)")
    parser.add_argument("--seed", action="store_true", help="the file is already in --save: serve it")
    parser.add_argument("--make-torrent", help="first write a v1 torrent of this file to --torrent")
    parser.add_argument("--piece-size", type=int, default=262144)
    parser.add_argument("--announce", default="")
    parser.add_argument("--max-seconds", type=float, default=50.0)
    parser.add_argument("--exit-when-done", action="store_true")
    parser.add_argument("--pex", action="store_true", help="peer exchange (ut_pex) on")
    parser.add_argument("--upload-limit", type=int, default=0, help="bytes per second (0: none)")
    args = parser.parse_args()

    if args.make_torrent:
        make_torrent(args.make_torrent, args.piece_size, args.torrent, args.announce)

    settings = {
        "listen_interfaces": "127.0.0.1:%d" % args.port,
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True,
        # Loopback trackers and peers are fine here; nothing leaves 127.0.0.1.
        "ssrf_mitigation": False,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.peer_notification
        | lt.alert.category_t.tracker_notification
        | lt.alert.category_t.status_notification,
        "user_agent": "swarm-interop libtorrent/" + lt.__version__,
        "upload_rate_limit": args.upload_limit,
    }
    session = lt.session(settings)
    if args.upload_limit > 0:
        # Local peers are in their own peer class, which the global limit does not cover.
        local = session.get_peer_class(lt.session.local_peer_class_id)
        local["upload_limit"] = args.upload_limit
        session.set_peer_class(lt.session.local_peer_class_id, local)

    if args.magnet:
        params = lt.parse_magnet_uri(args.magnet)
    else:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(args.torrent)
    params.save_path = args.save
    off = lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
    if not args.pex:
        off |= lt.torrent_flags.disable_pex
    params.flags = off & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    handle = session.add_torrent(params)

    deadline = time.monotonic() + args.max_seconds
    while session.listen_port() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    emit(event="listening", port=session.listen_port())

    peers = [host_port(text) for text in args.connect]
    met = set()
    finished = False
    announced_seeding = False
    last_status = 0.0
    last_dial = 0.0
    while time.monotonic() < deadline:
        for alert in session.pop_alerts():
            kind = type(alert).__name__
            if kind in ("peer_error_alert", "peer_disconnected_alert", "tracker_error_alert",
                        "torrent_error_alert", "file_error_alert", "hash_failed_alert",
                        "peer_connect_alert", "tracker_reply_alert", "tracker_warning_alert"):
                emit(event="alert", kind=kind, message=alert.message())
        status = handle.status()
        if status.state in (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data):
            time.sleep(0.05)
            continue
        if args.pex:
            report_met(handle, met)
        now = time.monotonic()
        # Dial the given peers, and once a second again those we have no outgoing connection to,
        # while we have no connection at all or are still downloading with fewer connections than
        # peers given: one may not have been listening yet, and libtorrent itself waits a minute
        # before redialling a peer that failed. (An incoming connection comes from another port,
        # so a peer may be dialled twice; libtorrent drops the duplicate by its peer id.)
        if peers and now - last_dial >= 1.0 and (
            status.num_peers == 0 or (not finished and status.num_peers < len(peers))
        ):
            last_dial = now
            outgoing = {
                (info.ip[0], info.ip[1]) for info in handle.get_peer_info() if info.flags & info.local_connection
            }
            for peer in peers:
                if peer not in outgoing:
                    handle.connect_peer(peer)
        if args.seed and not announced_seeding and status.is_seeding:
            announced_seeding = True
            finished = True
            emit(event="seeding", pieces=status.num_pieces)
        if not args.seed and not finished and status.is_seeding:
            finished = True
            emit(
                event="complete",
                pieces=status.num_pieces,
                downloaded=status.total_payload_download,
                uploaded=status.total_payload_upload,
            )
            if args.exit_when_done:
                return 0
        if now - last_status >= 1.0:
            last_status = now
            emit(
                event="status",
                state=str(status.state),
                progress=round(status.progress, 4),
                peers=status.num_peers,
                seeds=status.num_seeds,
                down=status.total_payload_download,
                up=status.total_payload_upload,
            )
        time.sleep(0.05)
    return 0 if finished else 3


if __name__ == "__main__":
    sys.exit(main())
`;
