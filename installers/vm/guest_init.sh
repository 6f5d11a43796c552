#!/bin/busybox sh
# /init of Berth's test guest initramfs (installers/vm/initramfs.py builds it).
#
# Stage 1 (PID 1 in the initramfs): load the modules listed in /modules.load,
# mount the host's root read-only over 9p (tag "hostroot"), give it tmpfs for
# /run and, for /tmp, the scratch disk /dev/vda when there is one (else tmpfs), fresh proc/sys/dev, a pure cgroup2 hierarchy (nsdelegate) on
# /sys/fs/cgroup and the job share (tag "job", read-write) on /run/berth-job,
# then switch_root into it.  switch_root rather than chroot: pivot_root (what
# container runtimes do) refuses to run from the initramfs' rootfs.
#
# Stage 2 (PID 1 in the host's tree): leave the root cgroup for /init.scope,
# as systemd does (the v2 "no internal processes" rule), run the job's
# job.sh with its output on the console, write its exit status to the job
# share's exit-status, and power off.  Console markers BERTH-GUEST-READY and
# BERTH-GUEST-EXIT <status> carry the guest's uptime and the status too.
# Any failure powers off with a BERTH-GUEST-FAIL line: the host never waits
# for a guest that gave up.
BB=/bin/busybox
JOB=/run/berth-job
STAGE=/run/berth

fail() {
    echo "BERTH-GUEST-FAIL $*"
    $BB sync
    $BB poweroff -f
}

stage1() {
    $BB mkdir -p /proc /sys /dev /newroot
    $BB mount -t proc proc /proc || fail "mount /proc"
    $BB mount -t sysfs sysfs /sys || fail "mount /sys"
    $BB mount -t devtmpfs devtmpfs /dev || fail "mount /dev"
    for module in $($BB cat /modules.load); do
        $BB insmod "/$module" || fail "insmod $module"
    done
    $BB mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /newroot \
        || fail "mount the host's root (9p tag hostroot)"
    if [ -b /dev/vda ]; then
        # A scratch disk (ext4, made by the host): /tmp on a real block device, so block I/O
        # limits (io.max) and accounting (io.stat) can be exercised, and tests spare the RAM.
        $BB mount -t ext4 -o nosuid,nodev /dev/vda /newroot/tmp || fail "mount the scratch disk on /tmp"
        $BB chmod 1777 /newroot/tmp
    else
        $BB mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /newroot/tmp || fail "tmpfs /tmp"
    fi
    $BB mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /newroot/run || fail "tmpfs /run"
    # A checkout under /tmp or /run, hidden by the mounts above, comes back through its own share
    # (job_guest.py passes its path as berth.checkout=).
    for arg in $($BB cat /proc/cmdline); do
        case "$arg" in berth.checkout=/*) checkout="${arg#berth.checkout=}" ;; esac
    done
    if [ -n "${checkout:-}" ]; then
        $BB mkdir -p "/newroot$checkout" || fail "mkdir $checkout"
        $BB mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose checkout "/newroot$checkout" \
            || fail "mount the checkout share (9p tag checkout) on $checkout"
    fi
    $BB mount -t proc proc /newroot/proc || fail "proc"
    $BB mount -t sysfs sysfs /newroot/sys || fail "sysfs"
    $BB mount -t devtmpfs devtmpfs /newroot/dev || fail "devtmpfs"
    $BB mkdir -p /newroot/dev/pts /newroot/dev/shm
    $BB mount -t devpts -o newinstance,ptmxmode=0666 devpts /newroot/dev/pts || fail "devpts"
    $BB mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /newroot/dev/shm || fail "/dev/shm"
    $BB mount -t cgroup2 -o nsdelegate cgroup2 /newroot/sys/fs/cgroup || fail "cgroup2"
    $BB mkdir -p /newroot$JOB /newroot$STAGE
    $BB mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 job /newroot$JOB || fail "mount the job share (9p tag job)"
    $BB cp $BB /newroot$STAGE/busybox || fail "copy busybox"
    $BB cp /init /newroot$STAGE/init || fail "copy init"
    exec $BB switch_root /newroot $STAGE/busybox sh $STAGE/init stage2
}

stage2() {
    BB=$STAGE/busybox
    $BB mkdir -p /sys/fs/cgroup/init.scope
    echo $$ > /sys/fs/cgroup/init.scope/cgroup.procs || fail "join /init.scope"
    echo "BERTH-GUEST-READY $($BB cut -d' ' -f1 /proc/uptime)"
    [ -f $JOB/job.sh ] || fail "no job.sh in the job share"
    $BB sh $JOB/job.sh </dev/null
    status=$?
    echo "$status" > $JOB/exit-status
    $BB umount $JOB
    echo "BERTH-GUEST-EXIT $status $($BB cut -d' ' -f1 /proc/uptime)"
    $BB sync
    $BB poweroff -f
}

if [ "$1" = stage2 ]; then stage2; else stage1; fi
