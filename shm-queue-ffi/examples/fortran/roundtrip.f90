! roundtrip.f90: the Fortran interface (include/shm_queue.f90) in one process: single records,
! in-place chunks and batches of doubles through an SPSC queue, then closing. Run by
! shm-queue-ffi/tests/c_interop.rs when gfortran is installed:
!   gfortran include/shm_queue.f90 shm-queue-ffi/examples/fortran/roundtrip.f90 \
!       target/release/libshm_queue_ffi.a -lpthread -ldl -lm -o roundtrip
!   ./roundtrip /my-queue
program roundtrip
  use shm_queue
  implicit none
  character(len=256) :: name
  type(c_ptr) :: queue, tx, rx, slots, items
  type(shmq_stats_t) :: stats
  real(c_double), target :: x, y, batch(50), back(64)
  real(c_double), pointer :: window(:)
  integer(c_size_t) :: n, k, got, pushed
  integer :: i
  integer(c_int) :: rc
  real(c_double) :: total, expected

  call get_command_argument(1, name)
  call check(shmq_create(shmq_name(name), SHMQ_SPSC, 8_c_size_t, 64_c_size_t, queue))
  call check(shmq_producer_attach(queue, tx))
  call check(shmq_consumer_attach(queue, rx))
  total = 0
  expected = 0
  do i = 1, 1000
    x = real(i, c_double)
    expected = expected + x
    call check(shmq_push(tx, c_loc(x)))
    call check(shmq_pop(rx, c_loc(y)))
    total = total + y
  end do

  ! In place: reserve slots, fill them, commit; read them, release.
  call check(shmq_reserve(tx, 10_c_size_t, slots, n))
  call c_f_pointer(slots, window, [n])
  window = 0.5_c_double
  expected = expected + 0.5_c_double * real(n, c_double)
  call check(shmq_commit(tx))
  call check(shmq_read(rx, 10_c_size_t, items, k))
  call c_f_pointer(items, window, [k])
  total = total + sum(window)
  call check(shmq_release(rx))
  do while (shmq_try_pop(rx, c_loc(y)) == SHMQ_OK)
    total = total + y
  end do

  ! Batches.
  batch = [(real(i, c_double), i = 1, 50)]
  expected = expected + sum(batch)
  call check(shmq_push_many(tx, c_loc(batch), 50_c_size_t, pushed))
  got = 0
  do while (got < 50)
    call check(shmq_pop_many(rx, c_loc(back), 64_c_size_t, n))
    total = total + sum(back(1:n))
    got = got + n
  end do

  rc = shmq_try_pop(rx, c_loc(y))
  if (rc /= SHMQ_EAGAIN) error stop 'expected SHMQ_EAGAIN on an empty queue'
  call check(shmq_stats(queue, stats))
  if (stats%record_size /= 8 .or. stats%kind /= SHMQ_SPSC .or. stats%len /= 0) error stop 'stats'
  call check(shmq_producer_close(tx))
  if (shmq_pop(rx, c_loc(y)) /= SHMQ_EPIPE) error stop 'expected SHMQ_EPIPE once the producer left'
  call check(shmq_consumer_close(rx))
  call check(shmq_queue_close(queue))
  if (shmq_unlink(shmq_name(name)) /= SHMQ_ENOENT) error stop 'the creator should have removed the name'
  if (abs(total - expected) > 1e-6_c_double) error stop 'records lost or changed'
  print '(a, a, a, f0.1)', 'fortran ok (', shmq_message(SHMQ_EAGAIN), ') ', total

contains

  subroutine check(rc)
    integer(c_int), intent(in) :: rc
    if (rc /= SHMQ_OK) then
      print '(a)', 'failed: ' // shmq_message(rc) // ' (' // shmq_last_message() // ')'
      error stop 1
    end if
  end subroutine check
end program roundtrip
