! shm_queue.f90: a Fortran 2003 (iso_c_binding) interface to shm_queue.h.
!
! Compile it with your program and link the C library:
!   gfortran include/shm_queue.f90 prog.f90 target/release/libshm_queue_ffi.a -lpthread -ldl -lm
!
! Names are C strings: pass shmq_name('/my-queue'), which appends the NUL. Records are passed by
! address: c_loc(x) of a variable or array with the TARGET attribute, record_size bytes each.
! Handles are type(c_ptr). Every integer function returns 0 or a negative SHMQ_E* code;
! shmq_message(code) gives its text, shmq_last_message() the details of the last failure.
! See shm_queue.h for what each function does; this file only restates the signatures.
module shm_queue
  use, intrinsic :: iso_c_binding
  implicit none

  ! Kinds.
  integer(c_int), parameter :: SHMQ_ANY_KIND = 0, SHMQ_SPSC = 1, SHMQ_MPSC = 2, &
                               SHMQ_SPMC = 3, SHMQ_MPMC = 4
  integer(c_size_t), parameter :: SHMQ_ANY_SIZE = 0, SHMQ_MAX_RECORD_SIZE = 4096
  ! Return codes (negative errno values, Linux).
  integer(c_int), parameter :: SHMQ_OK = 0, SHMQ_EPERM = -1, SHMQ_ENOENT = -2, SHMQ_EIO = -5, &
                               SHMQ_EAGAIN = -11, SHMQ_EACCES = -13, SHMQ_EBUSY = -16, &
                               SHMQ_EEXIST = -17, SHMQ_EINVAL = -22, SHMQ_EMFILE = -24, &
                               SHMQ_ENOSPC = -28, SHMQ_EPIPE = -32, SHMQ_ENAMETOOLONG = -36, &
                               SHMQ_EPROTO = -71, SHMQ_EUSERS = -87, SHMQ_ETIMEDOUT = -110, &
                               SHMQ_EOWNERDEAD = -130, SHMQ_ENOTRECOVERABLE = -131

  ! shmq_options_t (unsigned C fields are read as signed integers of the same size).
  type, bind(c) :: shmq_options_t
    integer(c_size_t) :: record_size, capacity, bound
    integer(c_int) :: kind
    integer(c_int32_t) :: wake_consumer_at, wake_producer_at, recheck_ms
  end type shmq_options_t

  ! shmq_stats_t.
  type, bind(c) :: shmq_stats_t
    integer(c_int) :: kind
    integer(c_int32_t) :: poisoned, producers, consumers, producers_gone, consumers_gone, &
                          dead_peer, reserved
    integer(c_int64_t) :: record_size, capacity, bound, pushed, popped, len, &
                          producer_blocked, producer_futex_waits, producer_futex_wakes, &
                          producer_blocked_ns, consumer_blocked, consumer_futex_waits, &
                          consumer_futex_wakes, consumer_blocked_ns
  end type shmq_stats_t

  interface
    ! Errors and record sizes.
    type(c_ptr) function shmq_strerror(code) bind(c, name='shmq_strerror')
      import :: c_ptr, c_int
      integer(c_int), value :: code
    end function
    type(c_ptr) function shmq_last_error() bind(c, name='shmq_last_error')
      import :: c_ptr
    end function
    integer(c_int) function shmq_last_error_code() bind(c, name='shmq_last_error_code')
      import :: c_int
    end function
    logical(c_bool) function shmq_record_size_supported(size) bind(c, name='shmq_record_size_supported')
      import :: c_bool, c_size_t
      integer(c_size_t), value :: size
    end function
    integer(c_size_t) function shmq_record_size_fit(size) bind(c, name='shmq_record_size_fit')
      import :: c_size_t
      integer(c_size_t), value :: size
    end function

    ! Queues.
    integer(c_int) function shmq_options_init(options, kind, record_size, capacity) &
        bind(c, name='shmq_options_init')
      import :: c_int, c_size_t, shmq_options_t
      type(shmq_options_t), intent(out) :: options
      integer(c_int), value :: kind
      integer(c_size_t), value :: record_size, capacity
    end function
    integer(c_int) function shmq_create(name, kind, record_size, capacity, queue) &
        bind(c, name='shmq_create')
      import :: c_char, c_int, c_size_t, c_ptr
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int), value :: kind
      integer(c_size_t), value :: record_size, capacity
      type(c_ptr), intent(out) :: queue
    end function
    integer(c_int) function shmq_create_with(name, options, queue) bind(c, name='shmq_create_with')
      import :: c_char, c_int, c_ptr, shmq_options_t
      character(kind=c_char), intent(in) :: name(*)
      type(shmq_options_t), intent(in) :: options
      type(c_ptr), intent(out) :: queue
    end function
    integer(c_int) function shmq_open(name, kind, record_size, queue) bind(c, name='shmq_open')
      import :: c_char, c_int, c_size_t, c_ptr
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int), value :: kind
      integer(c_size_t), value :: record_size
      type(c_ptr), intent(out) :: queue
    end function
    integer(c_int) function shmq_keep_name(queue) bind(c, name='shmq_keep_name')
      import :: c_int, c_ptr
      type(c_ptr), value :: queue
    end function
    integer(c_int) function shmq_poison(queue) bind(c, name='shmq_poison')
      import :: c_int, c_ptr
      type(c_ptr), value :: queue
    end function
    integer(c_int) function shmq_stats(queue, stats) bind(c, name='shmq_stats')
      import :: c_int, c_ptr, shmq_stats_t
      type(c_ptr), value :: queue
      type(shmq_stats_t), intent(out) :: stats
    end function
    integer(c_int) function shmq_stats_by_name(name, stats) bind(c, name='shmq_stats_by_name')
      import :: c_char, c_int, shmq_stats_t
      character(kind=c_char), intent(in) :: name(*)
      type(shmq_stats_t), intent(out) :: stats
    end function
    integer(c_int) function shmq_queue_close(queue) bind(c, name='shmq_queue_close')
      import :: c_int, c_ptr
      type(c_ptr), value :: queue
    end function
    integer(c_int) function shmq_unlink(name) bind(c, name='shmq_unlink')
      import :: c_char, c_int
      character(kind=c_char), intent(in) :: name(*)
    end function
    integer(c_int) function shmq_producer_attach(queue, producer) bind(c, name='shmq_producer_attach')
      import :: c_int, c_ptr
      type(c_ptr), value :: queue
      type(c_ptr), intent(out) :: producer
    end function
    integer(c_int) function shmq_consumer_attach(queue, consumer) bind(c, name='shmq_consumer_attach')
      import :: c_int, c_ptr
      type(c_ptr), value :: queue
      type(c_ptr), intent(out) :: consumer
    end function

    ! Producers.
    integer(c_int) function shmq_push(producer, record) bind(c, name='shmq_push')
      import :: c_int, c_ptr
      type(c_ptr), value :: producer, record
    end function
    integer(c_int) function shmq_try_push(producer, record) bind(c, name='shmq_try_push')
      import :: c_int, c_ptr
      type(c_ptr), value :: producer, record
    end function
    integer(c_int) function shmq_push_timeout(producer, record, timeout_ns) bind(c, name='shmq_push_timeout')
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: producer, record
      integer(c_int64_t), value :: timeout_ns
    end function
    integer(c_int) function shmq_push_many(producer, records, count, pushed) bind(c, name='shmq_push_many')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: producer, records
      integer(c_size_t), value :: count
      integer(c_size_t), intent(out) :: pushed
    end function
    integer(c_int) function shmq_reserve(producer, max, slots, len) bind(c, name='shmq_reserve')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: producer
      integer(c_size_t), value :: max
      type(c_ptr), intent(out) :: slots
      integer(c_size_t), intent(out) :: len
    end function
    integer(c_int) function shmq_try_reserve(producer, max, slots, len) bind(c, name='shmq_try_reserve')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: producer
      integer(c_size_t), value :: max
      type(c_ptr), intent(out) :: slots
      integer(c_size_t), intent(out) :: len
    end function
    integer(c_int) function shmq_reserve_timeout(producer, max, slots, len, timeout_ns) &
        bind(c, name='shmq_reserve_timeout')
      import :: c_int, c_ptr, c_size_t, c_int64_t
      type(c_ptr), value :: producer
      integer(c_size_t), value :: max
      type(c_ptr), intent(out) :: slots
      integer(c_size_t), intent(out) :: len
      integer(c_int64_t), value :: timeout_ns
    end function
    integer(c_int) function shmq_commit(producer) bind(c, name='shmq_commit')
      import :: c_int, c_ptr
      type(c_ptr), value :: producer
    end function
    integer(c_int) function shmq_commit_first(producer, n) bind(c, name='shmq_commit_first')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: producer
      integer(c_size_t), value :: n
    end function
    integer(c_int) function shmq_abandon(producer) bind(c, name='shmq_abandon')
      import :: c_int, c_ptr
      type(c_ptr), value :: producer
    end function
    integer(c_int) function shmq_producer_flush(producer) bind(c, name='shmq_producer_flush')
      import :: c_int, c_ptr
      type(c_ptr), value :: producer
    end function
    integer(c_int) function shmq_producer_check_peers(producer) bind(c, name='shmq_producer_check_peers')
      import :: c_int, c_ptr
      type(c_ptr), value :: producer
    end function
    integer(c_int) function shmq_producer_poison(producer) bind(c, name='shmq_producer_poison')
      import :: c_int, c_ptr
      type(c_ptr), value :: producer
    end function
    integer(c_int) function shmq_producer_stats(producer, stats) bind(c, name='shmq_producer_stats')
      import :: c_int, c_ptr, shmq_stats_t
      type(c_ptr), value :: producer
      type(shmq_stats_t), intent(out) :: stats
    end function
    integer(c_int) function shmq_producer_close(producer) bind(c, name='shmq_producer_close')
      import :: c_int, c_ptr
      type(c_ptr), value :: producer
    end function

    ! Consumers.
    integer(c_int) function shmq_pop(consumer, record) bind(c, name='shmq_pop')
      import :: c_int, c_ptr
      type(c_ptr), value :: consumer, record
    end function
    integer(c_int) function shmq_try_pop(consumer, record) bind(c, name='shmq_try_pop')
      import :: c_int, c_ptr
      type(c_ptr), value :: consumer, record
    end function
    integer(c_int) function shmq_pop_timeout(consumer, record, timeout_ns) bind(c, name='shmq_pop_timeout')
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: consumer, record
      integer(c_int64_t), value :: timeout_ns
    end function
    integer(c_int) function shmq_pop_many(consumer, records, max, popped) bind(c, name='shmq_pop_many')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: consumer, records
      integer(c_size_t), value :: max
      integer(c_size_t), intent(out) :: popped
    end function
    integer(c_int) function shmq_read(consumer, max, items, len) bind(c, name='shmq_read')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: consumer
      integer(c_size_t), value :: max
      type(c_ptr), intent(out) :: items
      integer(c_size_t), intent(out) :: len
    end function
    integer(c_int) function shmq_try_read(consumer, max, items, len) bind(c, name='shmq_try_read')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: consumer
      integer(c_size_t), value :: max
      type(c_ptr), intent(out) :: items
      integer(c_size_t), intent(out) :: len
    end function
    integer(c_int) function shmq_read_timeout(consumer, max, items, len, timeout_ns) &
        bind(c, name='shmq_read_timeout')
      import :: c_int, c_ptr, c_size_t, c_int64_t
      type(c_ptr), value :: consumer
      integer(c_size_t), value :: max
      type(c_ptr), intent(out) :: items
      integer(c_size_t), intent(out) :: len
      integer(c_int64_t), value :: timeout_ns
    end function
    integer(c_int) function shmq_release(consumer) bind(c, name='shmq_release')
      import :: c_int, c_ptr
      type(c_ptr), value :: consumer
    end function
    integer(c_int) function shmq_consumer_flush(consumer) bind(c, name='shmq_consumer_flush')
      import :: c_int, c_ptr
      type(c_ptr), value :: consumer
    end function
    integer(c_int) function shmq_consumer_check_peers(consumer) bind(c, name='shmq_consumer_check_peers')
      import :: c_int, c_ptr
      type(c_ptr), value :: consumer
    end function
    integer(c_int) function shmq_consumer_poison(consumer) bind(c, name='shmq_consumer_poison')
      import :: c_int, c_ptr
      type(c_ptr), value :: consumer
    end function
    integer(c_int) function shmq_consumer_stats(consumer, stats) bind(c, name='shmq_consumer_stats')
      import :: c_int, c_ptr, shmq_stats_t
      type(c_ptr), value :: consumer
      type(shmq_stats_t), intent(out) :: stats
    end function
    integer(c_int) function shmq_consumer_close(consumer) bind(c, name='shmq_consumer_close')
      import :: c_int, c_ptr
      type(c_ptr), value :: consumer
    end function

    ! libc's strlen, for reading the C strings above.
    integer(c_size_t) function shmq_c_strlen(s) bind(c, name='strlen')
      import :: c_size_t, c_ptr
      type(c_ptr), value :: s
    end function
  end interface

contains

  ! A Fortran string as a C name: trimmed, NUL-terminated.
  function shmq_name(name) result(c_name)
    character(len=*), intent(in) :: name
    character(kind=c_char, len=len_trim(name) + 1) :: c_name
    c_name = trim(name) // c_null_char
  end function shmq_name

  ! A C string (never NULL here) as a Fortran string.
  function shmq_to_string(s) result(text)
    type(c_ptr), intent(in) :: s
    character(len=:), allocatable :: text
    character(kind=c_char), pointer :: chars(:)
    integer :: i, n
    n = int(shmq_c_strlen(s))
    call c_f_pointer(s, chars, [n])
    allocate(character(len=n) :: text)
    do i = 1, n
      text(i:i) = chars(i)
    end do
  end function shmq_to_string

  ! The text of a return code.
  function shmq_message(code) result(text)
    integer(c_int), intent(in) :: code
    character(len=:), allocatable :: text
    text = shmq_to_string(shmq_strerror(code))
  end function shmq_message

  ! The details of this thread's last failure.
  function shmq_last_message() result(text)
    character(len=:), allocatable :: text
    text = shmq_to_string(shmq_last_error())
  end function shmq_last_message

end module shm_queue
