// The ORM's own exceptions (SQLAlchemy's names); database errors raised by a flush are the DBError classes of
// pooler/errors.hpp, with the object that failed attached (DBError::instance<T>()).
#pragma once

#include "pooler/errors.hpp"

namespace pooler::orm {

// A relationship of an object outside any session was accessed before it was loaded.
class DetachedInstanceError : public client::InvalidRequestError {
 public:
  using client::InvalidRequestError::InvalidRequestError;
};
// The object is not what the session expects (e.g. delete_() of an object it does not hold, or a mapped
// object with an unset primary key passed to refresh()).
class UnmappedInstanceError : public client::InvalidRequestError {
 public:
  using client::InvalidRequestError::InvalidRequestError;
};
// An UPDATE or DELETE of one object matched no row: someone else deleted it.
class StaleDataError : public client::Error {
 public:
  using client::Error::Error;
};
// refresh() of an object whose row is gone.
class ObjectDeletedError : public client::InvalidRequestError {
 public:
  using client::InvalidRequestError::InvalidRequestError;
};

}  // namespace pooler::orm
